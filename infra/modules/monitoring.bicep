// Log Analytics workspace and workspace-based Application Insights.
param logAnalyticsName string
param appInsightsName string
param location string
param tags object = {}

@description('Entra ID auth only for ingestion; the app identity gets Monitoring Metrics Publisher.')
param disableLocalAuth bool = true

@minValue(30)
@maxValue(730)
param retentionInDays int = 30

resource workspace 'Microsoft.OperationalInsights/workspaces@2025-07-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    // No shared-key access (agents, Data Collector API): telemetry arrives through Application
    // Insights, and people and alerts read with Entra ID.
    features: {
      disableLocalAuth: true
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: disableLocalAuth
  }
}

output logAnalyticsId string = workspace.id
output logAnalyticsName string = workspace.name
output appInsightsId string = appInsights.id
output appInsightsName string = appInsights.name
output appInsightsConnectionString string = appInsights.properties.ConnectionString
