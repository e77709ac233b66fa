// Key Vault (RBAC, soft delete, purge protection) and the app's secrets.
// A secret is written only when its parameter is non-empty: a redeploy with empty parameters
// never overwrites a value set with `az keyvault secret set` or a rotated refresh token.
param name string
param location string
param tags object = {}

@description('Secret names keyed by purpose (main.bicep secretNames).')
param secretNames object

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

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' = {
  // checkov:skip=CKV_AZURE_109: App Service Key Vault references and operators' az keyvault secret set need network access; a firewall needs VNet integration and private endpoints, private networking needs VNet integration, which this template does not deploy (documented in docs/deploy.md); access is RBAC-only
  // checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForTemplateDeployment: false
    enabledForDiskEncryption: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource accountToken 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = if (!empty(brightpearlAccountToken)) {
  // checkov:skip=CKV_AZURE_41: an expiry date would stop the integration silently when reached; these secrets are rotated by the operator (webhook and client secrets) or by the app (OAuth refresh token), see docs/deploy.md
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not see properties of conditional (if) resources, which pycep nests one level deeper
  parent: vault
  name: secretNames.brightpearlAccountToken
  properties: {
    value: brightpearlAccountToken
    contentType: 'text/plain'
  }
}

resource clientSecret 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = if (!empty(brightpearlClientSecret)) {
  // checkov:skip=CKV_AZURE_41: an expiry date would stop the integration silently when reached; these secrets are rotated by the operator (webhook and client secrets) or by the app (OAuth refresh token), see docs/deploy.md
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not see properties of conditional (if) resources, which pycep nests one level deeper
  parent: vault
  name: secretNames.brightpearlClientSecret
  properties: {
    value: brightpearlClientSecret
    contentType: 'text/plain'
  }
}

resource refreshToken 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = if (!empty(brightpearlRefreshToken)) {
  // checkov:skip=CKV_AZURE_41: an expiry date would stop the integration silently when reached; these secrets are rotated by the operator (webhook and client secrets) or by the app (OAuth refresh token), see docs/deploy.md
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not see properties of conditional (if) resources, which pycep nests one level deeper
  parent: vault
  name: secretNames.brightpearlRefreshToken
  properties: {
    value: brightpearlRefreshToken
    contentType: 'text/plain'
  }
}

resource dvClientSecret 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = if (!empty(dataverseClientSecret)) {
  // checkov:skip=CKV_AZURE_41: an expiry date would stop the integration silently when reached; these secrets are rotated by the operator (webhook and client secrets) or by the app (OAuth refresh token), see docs/deploy.md
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not see properties of conditional (if) resources, which pycep nests one level deeper
  parent: vault
  name: secretNames.dataverseClientSecret
  properties: {
    value: dataverseClientSecret
    contentType: 'text/plain'
  }
}

resource bpWebhookSecret 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = if (!empty(brightpearlWebhookSecret)) {
  // checkov:skip=CKV_AZURE_41: an expiry date would stop the integration silently when reached; these secrets are rotated by the operator (webhook and client secrets) or by the app (OAuth refresh token), see docs/deploy.md
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not see properties of conditional (if) resources, which pycep nests one level deeper
  parent: vault
  name: secretNames.brightpearlWebhookSecret
  properties: {
    value: brightpearlWebhookSecret
    contentType: 'text/plain'
  }
}

resource dvWebhookSecret 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = if (!empty(dataverseWebhookSecret)) {
  // checkov:skip=CKV_AZURE_41: an expiry date would stop the integration silently when reached; these secrets are rotated by the operator (webhook and client secrets) or by the app (OAuth refresh token), see docs/deploy.md
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not see properties of conditional (if) resources, which pycep nests one level deeper
  parent: vault
  name: secretNames.dataverseWebhookSecret
  properties: {
    value: dataverseWebhookSecret
    contentType: 'text/plain'
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
