// Operations workbook: per-flow throughput, failures, dead letters and latency (infra/workbook.json).
param displayName string
param location string
param tags object = {}
param appInsightsId string

@description('Workbook JSON (loadTextContent of infra/workbook.json in main.bicep).')
param serializedData string

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, appInsightsId, 'sync-operations-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    version: 'Notebook/1.0'
    sourceId: appInsightsId
    serializedData: serializedData
  }
}

output id string = workbook.id
