// Service Bus namespace; one servicebus-topic.bicep module per topic of infra/topology.json.
param name string
param location string
param tags object = {}

@allowed([
  'Standard'
  'Premium'
])
param sku string = 'Standard'

param premiumCapacity int = 1

@description('Disable SAS keys; only Entra ID (managed identity) can send and receive.')
param disableLocalAuth bool = true

@description('The topics array of infra/topology.json (loadJsonContent in main.bicep).')
param topics array

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: (sku == 'Premium') ? {
    name: 'Premium'
    tier: 'Premium'
    capacity: premiumCapacity
  } : {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: disableLocalAuth
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

module topic 'servicebus-topic.bicep' = [for t in topics: {
  name: 'sbtopic-${t.name}'
  params: {
    namespaceName: namespace.name
    topic: t
  }
}]

output id string = namespace.id
output name string = namespace.name
output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'
