// Example parameters for infra/main.bicep. Copy, edit, then (docs/deploy.md step 3):
//   az deployment group create -g <resource-group> -n bpsync -f infra/main.bicep -p infra/main.bicepparam
// Secrets are NOT written here: set them with az keyvault secret set (docs/deploy.md step 4), or
// pass them once on the command line, e.g. -p brightpearlWebhookSecret=<value>.
using 'main.bicep'

param baseName = 'bpsync'
param alertEmail = 'ops@example.com'

// Brightpearl: account code, datacentre and the private app (or OAuth app) identifiers.
param brightpearlAccount = 'mycompany'
param brightpearlDatacentre = 'euw1'
param brightpearlAuthMode = 'private'
param brightpearlAppRef = 'mycompany_sync'
// For brightpearlAuthMode = 'oauth' also set:
// param brightpearlDevRef = 'mydeveloper'

// Dataverse environment URL.
param dataverseUrl = 'https://contoso.crm.dynamics.com'

// Platform choices (defaults shown).
param serviceBusSku = 'Standard'
param serviceBusDisableLocalAuth = true
param pythonVersion = '3.13'
param instanceMemoryMB = 2048
param maximumInstanceCount = 100
param failureAlertThreshold = 5
param throttlingAlertThreshold = 50
param tags = {
  workload: 'brightpearl-dataverse-sync'
  environment: 'production'
}
