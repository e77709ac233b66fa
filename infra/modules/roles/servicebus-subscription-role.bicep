// Grants one built-in role on each subscription of one topic to a service principal (the app's
// managed identity).
param namespaceName string
param topicName string

@description('The subscriptions array of one infra/topology.json topic (each has a name).')
param subscriptions array

param principalId string

@description('Built-in role definition GUID.')
param roleDefinitionId string

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: namespaceName
}

resource topic 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' existing = {
  parent: namespace
  name: topicName
}

resource subscription 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' existing = [for sub in subscriptions: {
  parent: topic
  name: sub.name
}]

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (sub, i) in subscriptions: {
  name: guid(subscription[i].id, principalId, roleDefinitionId)
  scope: subscription[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]
