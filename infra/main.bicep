// The whole Azure footprint of the Brightpearl <-> Dataverse integration (resource-group scope).
// Deploy: az deployment group create -g <rg> -n bpsync -f infra/main.bicep -p infra/main.bicepparam
// Topics, subscriptions and rules come from infra/topology.json (the same file the local bus reads).
targetScope = 'resourceGroup'

@description('Short name used in every resource name (letters, digits, hyphens).')
@minLength(3)
@maxLength(12)
param baseName string = 'bpsync'

@description('Azure region of every regional resource.')
param location string = resourceGroup().location

@description('Tags applied to every resource.')
param tags object = {}

@description('Service Bus tier. Standard is enough for id-only messages (256 KB); Premium for VNet or private endpoints.')
@allowed([
  'Standard'
  'Premium'
])
param serviceBusSku string = 'Standard'

@description('Messaging units when serviceBusSku is Premium (1, 2, 4, 8 or 16).')
@allowed([
  1
  2
  4
  8
  16
])
param serviceBusPremiumCapacity int = 1

@description('Disable SAS (local) auth on the Service Bus namespace; the app uses its managed identity.')
param serviceBusDisableLocalAuth bool = true

@description('Python version of the Flex Consumption runtime (docs/deploy.md, "Python version"). 3.13 runs the worker whose indexing the test suite drives; 3.11 and 3.12 run the older worker and rely on PYTHON_ISOLATE_WORKER_DEPENDENCIES.')
@allowed([
  '3.11'
  '3.12'
  '3.13'
])
param pythonVersion string = '3.13'

@description('Flex Consumption instance memory in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Flex Consumption maximum instance count (40-1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Allow SCM basic-auth publishing credentials; keep false (Core Tools publishes with your Entra ID login). Only for old tooling that needs publish profiles.')
param allowBasicPublishingCredentials bool = false

@description('Brightpearl account code (BRIGHTPEARL_ACCOUNT).')
param brightpearlAccount string

@description('Dataverse environment URL, e.g. https://contoso.crm.dynamics.com (DATAVERSE_URL).')
param dataverseUrl string

@description('Brightpearl datacentre code (BRIGHTPEARL_DATACENTRE), e.g. euw1 or use1.')
param brightpearlDatacentre string = 'euw1'

@description('Brightpearl auth: private (app ref + account token) or oauth (client + rotating refresh token kept in Key Vault).')
@allowed([
  'private'
  'oauth'
])
param brightpearlAuthMode string = 'private'

@description('Brightpearl app reference (BRIGHTPEARL_APP_REF); also the OAuth client id unless brightpearlOAuthClientId is set.')
param brightpearlAppRef string

@description('Brightpearl developer reference (BRIGHTPEARL_DEV_REF); required for oauth.')
param brightpearlDevRef string = ''

@description('OAuth client id when it differs from the app reference (BRIGHTPEARL_OAUTH_CLIENT_ID); empty = not set.')
param brightpearlOAuthClientId string = ''

@description('OAuth token endpoint override (BRIGHTPEARL_OAUTH_TOKEN_URL); empty = the code default.')
param brightpearlOAuthTokenUrl string = ''

@description('Prefix of the state table names (STATE_TABLE_PREFIX): letters and digits.')
@maxLength(21)
param stateTablePrefix string = ''

@description('How the app authenticates to Dataverse: managedIdentity (the app identity is the application user; same tenant) or secret (an app registration + client secret in Key Vault).')
@allowed([
  'managedIdentity'
  'secret'
])
param dataverseAuthMode string = 'managedIdentity'

@description('Tenant of the Dataverse app registration (DATAVERSE_TENANT_ID, secret mode).')
param dataverseTenantId string = subscription().tenantId

@description('Application (client) id of the Dataverse app registration (DATAVERSE_CLIENT_ID); required for secret mode.')
param dataverseClientId string = ''

@description('Dataverse OrganizationId; when set, webhooks from any other organisation are rejected (DATAVERSE_ORGANIZATION_ID).')
param dataverseOrganizationId string = ''

@description('systemuserid of the integration\'s application user in Dataverse (DATAVERSE_INTEGRATION_USER_ID, docs/deploy.md step 6); empty = not set.')
param dataverseIntegrationUserId string = ''

@description('Extra app settings merged last (e.g. AzureFunctionsJobHost__ overrides). Never put secrets here.')
param additionalAppSettings object = {}

@description('E-mail address that receives alerts.')
param alertEmail string

@description('Failed executions plus exceptions in 15 minutes above which the failure alert fires.')
@minValue(1)
param failureAlertThreshold int = 5

@description('Throttled calls (HTTP 429/503 or throttle reason codes) in 15 minutes above which the throttling alert fires.')
@minValue(1)
param throttlingAlertThreshold int = 50

@description('Reconciliation drift findings in a day above which the drift alert fires.')
@minValue(0)
param reconcileDriftThreshold int = 25

@description('Anomaly flags of one kind in an hour above which the anomaly alert fires (0: every flag).')
@minValue(0)
param anomalyThreshold int = 0

@description('Disable key-based ingestion on Application Insights (Entra ID auth only).')
param appInsightsDisableLocalAuth bool = true

@description('Initial secret values. Leave empty to set them later with az keyvault secret set; an empty value never overwrites an existing secret.')
@secure()
param brightpearlAccountToken string = ''

@secure()
param brightpearlClientSecret string = ''

@secure()
param brightpearlRefreshToken string = ''

@secure()
param dataverseClientSecret string = ''

@secure()
param brightpearlWebhookSecret string = ''

@secure()
param dataverseWebhookSecret string = ''

var topology = loadJsonContent('topology.json')
var suffix = uniqueString(resourceGroup().id, baseName)
var compactBase = toLower(replace(baseName, '-', ''))

// Every container and table the app's identity may touch; its storage roles are granted on these.
var deploymentContainerName = 'app-package'
var hostContainerNames = [
  'azure-webjobs-hosts'
  'azure-webjobs-secrets'
]
var stateTableNames = [
  '${stateTablePrefix}links'
  '${stateTablePrefix}ledger'
  '${stateTablePrefix}cursors'
  '${stateTablePrefix}audit'
]

var names = {
  identity: 'id-${baseName}-${suffix}'
  logAnalytics: 'log-${baseName}-${suffix}'
  appInsights: 'appi-${baseName}-${suffix}'
  storage: take('st${compactBase}${suffix}', 24)
  serviceBus: 'sb-${baseName}-${suffix}'
  keyVault: take('kv-${take(compactBase, 6)}-${suffix}', 24)
  plan: 'plan-${baseName}-${suffix}'
  functionApp: 'func-${baseName}-${suffix}'
  actionGroup: 'ag-${baseName}-${suffix}'
}

// Key Vault secret names. The function app reads each through a Key Vault reference.
var secretNames = {
  brightpearlAccountToken: 'brightpearl-account-token'
  brightpearlClientSecret: 'brightpearl-oauth-client-secret'
  brightpearlRefreshToken: 'brightpearl-oauth-refresh-token'
  brightpearlTokenSet: 'brightpearl-oauth-token'
  dataverseClientSecret: 'dataverse-client-secret'
  brightpearlWebhookSecret: 'brightpearl-webhook-secret'
  dataverseWebhookSecret: 'dataverse-webhook-secret'
}

// Built-in role definition ids (same in every tenant), see docs/deploy.md.
var roles = {
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: names.identity
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    logAnalyticsName: names.logAnalytics
    appInsightsName: names.appInsights
    location: location
    tags: tags
    disableLocalAuth: appInsightsDisableLocalAuth
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: names.storage
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    hostContainerNames: hostContainerNames
    tableNames: stateTableNames
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    name: names.serviceBus
    location: location
    tags: tags
    sku: serviceBusSku
    premiumCapacity: serviceBusPremiumCapacity
    disableLocalAuth: serviceBusDisableLocalAuth
    topics: topology.topics
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: names.keyVault
    location: location
    tags: tags
    secretNames: secretNames
    brightpearlAccountToken: brightpearlAccountToken
    brightpearlClientSecret: brightpearlClientSecret
    brightpearlRefreshToken: brightpearlRefreshToken
    dataverseClientSecret: dataverseClientSecret
    brightpearlWebhookSecret: brightpearlWebhookSecret
    dataverseWebhookSecret: dataverseWebhookSecret
  }
}

// --- role assignments for the app's user-assigned identity (one module per scope type) ---
// Least privilege: each data role is granted on the entities the app uses, not on the namespace
// or the account (docs/deploy.md, "What the app's identity may do").

// Publishing: ingress, pollers and retry copies send to every topic of the topology.
module sbSenders 'modules/roles/servicebus-topic-role.bicep' = [for topic in topology.topics: {
  name: 'role-sb-sender-${topic.name}'
  params: {
    namespaceName: serviceBus.outputs.name
    topicName: topic.name
    principalId: identity.outputs.principalId
    roleDefinitionId: roles.serviceBusDataSender
  }
}]

// Receiving: each flow's trigger reads (and settles, dead-letters) its own subscription.
module sbReceivers 'modules/roles/servicebus-subscription-role.bicep' = [for topic in topology.topics: {
  name: 'role-sb-receiver-${topic.name}'
  params: {
    namespaceName: serviceBus.outputs.name
    topicName: topic.name
    subscriptions: topic.subscriptions
    principalId: identity.outputs.principalId
    roleDefinitionId: roles.serviceBusDataReceiver
  }
}]

// Blobs: the Flex deployment package and the Functions host's own containers (function keys,
// timer schedule status, singleton locks); storage.bicep creates all three so they can be scopes.
module blobOwners 'modules/roles/storage-container-role.bicep' = [for containerName in concat([deploymentContainerName], hostContainerNames): {
  name: 'role-blob-owner-${containerName}'
  params: {
    storageAccountName: storage.outputs.name
    containerName: containerName
    principalId: identity.outputs.principalId
    roleDefinitionId: roles.storageBlobDataOwner
  }
}]

// Rows: read and write only the four state tables.
module tableContributors 'modules/roles/storage-table-role.bicep' = [for tableName in stateTableNames: {
  name: 'role-table-contributor-${tableName}'
  params: {
    storageAccountName: storage.outputs.name
    tableName: tableName
    principalId: identity.outputs.principalId
    roleDefinitionId: roles.storageTableDataContributor
  }
}]

// Create Table and Query Tables are account-level calls (create-if-missing at start-up, the health
// probe), which a table-scoped role does not cover: a custom role with only those two actions
// (no row access) on the account.
module tableCatalogRole 'modules/roles/table-catalog-role-definition.bicep' = {
  name: 'role-definition-table-catalog'
  params: {
    roleName: 'Table catalog (${names.functionApp})'
  }
}

module tableCatalog 'modules/roles/storage-role.bicep' = {
  name: 'role-table-catalog'
  params: {
    storageAccountName: storage.outputs.name
    principalId: identity.outputs.principalId
    roleDefinitionId: tableCatalogRole.outputs.roleDefinitionId
  }
}

// The Functions host keeps timer and scale bookkeeping in the host storage; queue access lets it
// use the queue service as well (Microsoft's Flex samples grant it).
module queueContributor 'modules/roles/storage-role.bicep' = {
  name: 'role-queue-contributor'
  params: {
    storageAccountName: storage.outputs.name
    principalId: identity.outputs.principalId
    roleDefinitionId: roles.storageQueueDataContributor
  }
}

module secretsUser 'modules/roles/keyvault-role.bicep' = {
  name: 'role-kv-secrets-user'
  params: {
    keyVaultName: keyVault.outputs.name
    principalId: identity.outputs.principalId
    roleDefinitionId: roles.keyVaultSecretsUser
  }
}

// Only with OAuth: the app writes the rotated token set (secret brightpearl-oauth-token) back to
// Key Vault. Granted on the vault because the app creates that secret on its first refresh and a
// role cannot be scoped to a secret that does not exist yet; the vault holds only this app's secrets.
module secretsOfficer 'modules/roles/keyvault-role.bicep' = if (brightpearlAuthMode == 'oauth') {
  name: 'role-kv-secrets-officer'
  params: {
    keyVaultName: keyVault.outputs.name
    principalId: identity.outputs.principalId
    roleDefinitionId: roles.keyVaultSecretsOfficer
  }
}

module metricsPublisher 'modules/roles/appinsights-role.bicep' = {
  name: 'role-metrics-publisher'
  params: {
    appInsightsName: monitoring.outputs.appInsightsName
    principalId: identity.outputs.principalId
    roleDefinitionId: roles.monitoringMetricsPublisher
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    name: names.functionApp
    planName: names.plan
    location: location
    tags: tags
    pythonVersion: pythonVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    allowBasicPublishingCredentials: allowBasicPublishingCredentials
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    serviceBusNamespaceName: serviceBus.outputs.name
    keyVaultName: keyVault.outputs.name
    secretNames: secretNames
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    brightpearlChangesTopic: first(filter(topology.topics, t => t.setting == 'BRIGHTPEARL_CHANGES_TOPIC')).name
    dataverseChangesTopic: first(filter(topology.topics, t => t.setting == 'DATAVERSE_CHANGES_TOPIC')).name
    brightpearlAccount: brightpearlAccount
    brightpearlDatacentre: brightpearlDatacentre
    brightpearlAuthMode: brightpearlAuthMode
    brightpearlAppRef: brightpearlAppRef
    brightpearlDevRef: brightpearlDevRef
    brightpearlOAuthClientId: brightpearlOAuthClientId
    brightpearlOAuthTokenUrl: brightpearlOAuthTokenUrl
    keyVaultUri: keyVault.outputs.uri
    dataverseUrl: dataverseUrl
    dataverseAuthMode: dataverseAuthMode
    dataverseTenantId: dataverseTenantId
    dataverseClientId: dataverseClientId
    dataverseOrganizationId: dataverseOrganizationId
    dataverseIntegrationUserId: dataverseIntegrationUserId
    stateTablePrefix: stateTablePrefix
    additionalAppSettings: additionalAppSettings
  }
  // Key Vault references and identity connections resolve only once the roles exist.
  dependsOn: [
    sbSenders
    sbReceivers
    blobOwners
    tableContributors
    tableCatalog
    queueContributor
    secretsUser
    secretsOfficer
    metricsPublisher
  ]
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    actionGroupName: names.actionGroup
    baseName: baseName
    location: location
    tags: tags
    alertEmail: alertEmail
    serviceBusNamespaceId: serviceBus.outputs.id
    appInsightsId: monitoring.outputs.appInsightsId
    failureThreshold: failureAlertThreshold
    throttlingThreshold: throttlingAlertThreshold
    reconcileDriftThreshold: reconcileDriftThreshold
    anomalyThreshold: anomalyThreshold
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  params: {
    displayName: 'Brightpearl-Dataverse sync (${baseName})'
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
    serializedData: loadTextContent('workbook.json')
  }
}

output functionAppName string = functionApp.outputs.name
output functionAppHostName string = functionApp.outputs.defaultHostName
output ingressUrl string = 'https://${functionApp.outputs.defaultHostName}/api'
output keyVaultName string = keyVault.outputs.name
output keyVaultUri string = keyVault.outputs.uri
output serviceBusNamespaceName string = serviceBus.outputs.name
output serviceBusFullyQualifiedNamespace string = serviceBus.outputs.fullyQualifiedNamespace
output storageAccountName string = storage.outputs.name
output appInsightsName string = monitoring.outputs.appInsightsName
output logAnalyticsWorkspaceName string = monitoring.outputs.logAnalyticsName
output identityClientId string = identity.outputs.clientId
output identityPrincipalId string = identity.outputs.principalId
output secretNames object = secretNames
