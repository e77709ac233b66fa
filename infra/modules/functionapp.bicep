// Function App on the Flex Consumption plan (Python), its user-assigned identity, identity-based
// connections, Key Vault references for every secret and every other app setting the code reads.
// tests/infra checks this module's appsettings against shared/settings.py and the function triggers.
param name string
param planName string
param location string
param tags object = {}

@allowed([
  '3.11'
  '3.12'
  '3.13'
])
param pythonVersion string = '3.13'

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerUrl string
param serviceBusNamespaceName string
param keyVaultName string

@description('Key Vault secret names keyed by purpose (main.bicep secretNames).')
param secretNames object

@secure()
param appInsightsConnectionString string

param brightpearlChangesTopic string
param dataverseChangesTopic string
param brightpearlAccount string
param brightpearlDatacentre string

@allowed([
  'private'
  'oauth'
])
param brightpearlAuthMode string
param brightpearlAppRef string
param brightpearlDevRef string = ''
param brightpearlOAuthClientId string = ''
param brightpearlOAuthTokenUrl string = ''
param keyVaultUri string
param dataverseUrl string

@allowed([
  'managedIdentity'
  'secret'
])
param dataverseAuthMode string = 'managedIdentity'
param dataverseTenantId string = ''
param dataverseClientId string = ''
param dataverseOrganizationId string = ''
param dataverseIntegrationUserId string = ''
param stateTablePrefix string = ''

@description('Extra settings merged last; never secrets.')
param additionalAppSettings object = {}

@description('Allow SCM/FTP basic-auth publishing credentials. Off: publish with an Entra ID login (az login).')
param allowBasicPublishingCredentials bool = false

resource plan 'Microsoft.Web/serverfarms@2025-03-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption zone redundancy is region-dependent; state and messages live in Storage and Service Bus, so an instance loss costs a retry, not data
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2025-03-01' = {
  // checkov:skip=CKV_AZURE_17: webhook callers (Brightpearl, Dataverse) cannot present client certificates; requests are authenticated with function keys plus a per-source shared secret
  // checkov:skip=CKV_AZURE_222: the webhook ingress must be reachable from Brightpearl and Dataverse over the internet; function keys and shared secrets protect it
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero on demand; Service Bus keeps messages while no instance runs, so a minimum instance count buys nothing for this workload
  // checkov:skip=CKV_AZURE_213: App Service health check does not apply to Flex Consumption, whose platform replaces unhealthy instances itself
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'sync'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      remoteDebuggingEnabled: false
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

resource ftpPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: allowBasicPublishingCredentials
  }
}

// Tunables with the code's defaults (infra/app-settings.json); tests/infra validates them.
var tunables = loadJsonContent('../app-settings.json')

// Settings deliberately NOT set here (sandbox-only or replaced by identity) are listed with their
// reasons in tests/infra/infra_checks.py (NOT_SET_IN_AZURE) and docs/deploy.md.
var coreSettings = {
  // host storage and state tables: managed identity, no connection string
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  // Service Bus triggers and publisher: managed identity
  ServiceBusConnection__fullyQualifiedNamespace: '${serviceBusNamespaceName}.servicebus.windows.net'
  ServiceBusConnection__credential: 'managedidentity'
  ServiceBusConnection__clientId: identityClientId
  // DefaultAzureCredential (Key Vault token store, Dataverse) picks the user-assigned identity
  AZURE_CLIENT_ID: identityClientId
  // telemetry (Entra ID ingestion)
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // The Python worker of 3.11/3.12 ships protobuf 4.25 and grpcio 1.59 and, without this, the app
  // imports those instead of its own (the Service Bus SDK-type binding extension needs protobuf
  // >= 6.32 and grpcio >= 1.74). 1 = the app's packages first. From 3.13 the worker always
  // isolates and ignores the setting. tests/infra/test_worker_dependency_isolation.py.
  PYTHON_ISOLATE_WORKER_DEPENDENCIES: '1'
  // bus and state
  BUS_BACKEND: 'servicebus'
  BRIGHTPEARL_CHANGES_TOPIC: brightpearlChangesTopic
  DATAVERSE_CHANGES_TOPIC: dataverseChangesTopic
  STATE_TABLE_PREFIX: stateTablePrefix
  // webhook ingress secrets
  BRIGHTPEARL_WEBHOOK_SECRET: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${secretNames.brightpearlWebhookSecret})'
  DATAVERSE_WEBHOOK_SECRET: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${secretNames.dataverseWebhookSecret})'
  // Brightpearl
  BRIGHTPEARL_ACCOUNT: brightpearlAccount
  BRIGHTPEARL_DATACENTRE: brightpearlDatacentre
  BRIGHTPEARL_AUTH_MODE: brightpearlAuthMode
  BRIGHTPEARL_APP_REF: brightpearlAppRef
  // Dataverse
  DATAVERSE_URL: dataverseUrl
  DATAVERSE_AUTHORITY_HOST: environment().authentication.loginEndpoint
}

// Dataverse: the app's own identity, or an app registration whose secret lives in Key Vault.
var dataverseAuthSettings = (dataverseAuthMode == 'managedIdentity') ? {
  DATAVERSE_USE_MANAGED_IDENTITY: 'true'
  DATAVERSE_MANAGED_IDENTITY_CLIENT_ID: identityClientId
} : {
  DATAVERSE_USE_MANAGED_IDENTITY: 'false'
  DATAVERSE_TENANT_ID: dataverseTenantId
  DATAVERSE_CLIENT_ID: dataverseClientId
  DATAVERSE_CLIENT_SECRET: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${secretNames.dataverseClientSecret})'
}
var dataverseOrganizationSetting = empty(dataverseOrganizationId) ? {} : {
  DATAVERSE_ORGANIZATION_ID: dataverseOrganizationId
}
var dataverseIntegrationUserSetting = empty(dataverseIntegrationUserId) ? {} : {
  DATAVERSE_INTEGRATION_USER_ID: dataverseIntegrationUserId
}

// Brightpearl credentials of the chosen auth mode only: a Key Vault reference to a secret that
// was never set would otherwise reach the code as the literal reference text.
var brightpearlAuthSettings = (brightpearlAuthMode == 'oauth') ? {
  BRIGHTPEARL_DEV_REF: brightpearlDevRef
  BRIGHTPEARL_OAUTH_CLIENT_SECRET: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${secretNames.brightpearlClientSecret})'
  BRIGHTPEARL_OAUTH_REFRESH_TOKEN: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${secretNames.brightpearlRefreshToken})'
  BRIGHTPEARL_TOKEN_STORE: 'keyvault'
  BRIGHTPEARL_KEY_VAULT_URL: keyVaultUri
  BRIGHTPEARL_TOKEN_SECRET_NAME: secretNames.brightpearlTokenSet
} : {
  BRIGHTPEARL_ACCOUNT_TOKEN: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${secretNames.brightpearlAccountToken})'
  BRIGHTPEARL_TOKEN_STORE: 'memory'
}

// Optional overrides: set only when given (an empty value would fail validation).
var brightpearlClientIdSetting = empty(brightpearlOAuthClientId) ? {} : {
  BRIGHTPEARL_OAUTH_CLIENT_ID: brightpearlOAuthClientId
}
var brightpearlTokenUrlSetting = empty(brightpearlOAuthTokenUrl) ? {} : {
  BRIGHTPEARL_OAUTH_TOKEN_URL: brightpearlOAuthTokenUrl
}

resource appSettings 'Microsoft.Web/sites/config@2025-03-01' = {
  // checkov:skip=CKV_AZURE_13: this is the 'appsettings' config resource; the check targets the 'web' config (siteConfig) and does not apply to app settings
  // checkov:skip=CKV_AZURE_63: this is the 'appsettings' config resource; the check targets the 'web' config (siteConfig) and does not apply to app settings
  // checkov:skip=CKV_AZURE_65: this is the 'appsettings' config resource; the check targets the 'web' config (siteConfig) and does not apply to app settings
  // checkov:skip=CKV_AZURE_66: this is the 'appsettings' config resource; the check targets the 'web' config (siteConfig) and does not apply to app settings
  // checkov:skip=CKV_AZURE_80: this is the 'appsettings' config resource; the check targets the 'web' config (siteConfig) and does not apply to app settings
  // checkov:skip=CKV_AZURE_88: this is the 'appsettings' config resource; the check targets the 'web' config (siteConfig) and does not apply to app settings
  // checkov:skip=CKV_AZURE_222: this is the 'appsettings' config resource; the check targets the 'web' config (siteConfig) and does not apply to app settings
  parent: site
  name: 'appsettings'
  properties: union(tunables, coreSettings, brightpearlAuthSettings, brightpearlClientIdSetting, brightpearlTokenUrlSetting, dataverseAuthSettings, dataverseOrganizationSetting, dataverseIntegrationUserSetting, additionalAppSettings)
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
