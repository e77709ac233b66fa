// Grants one built-in role on an Application Insights component to a service principal (the app's managed identity).
param appInsightsName string
param principalId string

@description('Built-in role definition GUID.')
param roleDefinitionId string

resource component 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(component.id, principalId, roleDefinitionId)
  scope: component
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output id string = assignment.id
