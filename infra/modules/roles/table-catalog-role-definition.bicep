// Custom role "table catalog": list and create tables, nothing else (no entity data). The app needs
// it on the storage account because two of its calls are account-level Table service operations,
// which a role on one table does not cover: Create Table (create-if-missing at start-up) and
// Query Tables (the /api/health probe). Reading and writing rows comes from Storage Table Data
// Contributor on each of the app's tables (storage-table-role.bicep).
@description('Unique per resource group and base name: custom role names are unique in a tenant.')
param roleName string

resource definition 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, roleName)
  properties: {
    roleName: roleName
    description: 'List and create Table service tables (no access to table rows).'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Storage/storageAccounts/tableServices/tables/read'
          'Microsoft.Storage/storageAccounts/tableServices/tables/write'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

@description('GUID of the custom role (what the role modules take as roleDefinitionId).')
output roleDefinitionId string = definition.name
