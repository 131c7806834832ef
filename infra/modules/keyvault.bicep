// Key Vault in RBAC mode. Holds:
//   qdrant-api-key  Qdrant's API key (Container App secret + QDRANT_API_KEY reference)
//   api-keys        the JSON list read as API_KEYS
// A secret is written only when its parameter is non-empty, so a redeployment without the
// parameters never overwrites a key that was rotated in the vault.
param location string
param tags object
param keyVaultName string

@secure()
param qdrantApiKey string

@secure()
param apiKeysJson string

@description('Gets Key Vault Secrets Officer (set/rotate secrets). Empty = nobody.')
param adminPrincipalId string = ''
param adminPrincipalType string = 'User'

@description('Purge protection; null (omitted) when off, because ARM rejects an explicit false on a vault that has it.')
param purgeProtection bool = true

var qdrantApiKeySecretName = 'qdrant-api-key'
var apiKeysSecretName = 'api-keys'
var keyVaultSecretsOfficerRoleId = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
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
    softDeleteRetentionInDays: 30
    enablePurgeProtection: purgeProtection ? true : null
    publicNetworkAccess: 'Enabled'
  }
}

resource qdrantKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(qdrantApiKey)) {
  parent: vault
  name: qdrantApiKeySecretName
  properties: {
    value: qdrantApiKey
    contentType: 'text/plain'
  }
}

resource apiKeysSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(apiKeysJson)) {
  parent: vault
  name: apiKeysSecretName
  properties: {
    value: apiKeysJson
    contentType: 'application/json'
  }
}

resource adminSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(adminPrincipalId)) {
  name: guid(vault.id, adminPrincipalId, keyVaultSecretsOfficerRoleId)
  scope: vault
  properties: {
    principalId: adminPrincipalId
    principalType: adminPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficerRoleId)
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
output qdrantApiKeySecretName string = qdrantApiKeySecretName
output apiKeysSecretName string = apiKeysSecretName
