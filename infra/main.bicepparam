// Example parameters for infra/main.bicep. Copy, edit, then:
//   az deployment group create -g <resource-group> -n bpsync -f infra/main.bicep -p infra/main.bicepparam
// Secrets are NOT written here: set them with az keyvault secret set (docs/deploy.md), or pass
// them once on the command line (-p brightpearlWebhookSecret=...) / via environment variables.
using 'main.bicep'

param baseName = 'bpsync'
param brightpearlAccount = 'mycompany'
param dataverseUrl = 'https://contoso.crm.dynamics.com'
param alertEmail = 'ops@example.com'
param serviceBusSku = 'Standard'
param serviceBusDisableLocalAuth = true
param pythonVersion = '3.11'
param instanceMemoryMB = 2048
param maximumInstanceCount = 100
param brightpearlOAuthRotation = false
param failureAlertThreshold = 5
param throttlingAlertThreshold = 50
param tags = {
  workload: 'brightpearl-dataverse-sync'
  environment: 'production'
}
// Optional: read a secret from the environment of the shell that runs the deployment, e.g.
// param brightpearlWebhookSecret = readEnvironmentVariable('BRIGHTPEARL_WEBHOOK_SECRET', '')
