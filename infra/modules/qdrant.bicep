// Qdrant on Azure Container Apps.
//
// * The environment is injected into the VNet and internal: it has no public IP, and
//   private DNS (private-dns.bicep) resolves *.<defaultDomain> to its internal load balancer.
// * Ingress listens on the environment's HTTPS endpoint and forwards to Qdrant's REST port
//   6333. `external: true` here means "reachable from the VNet" (the environment is internal);
//   `external: false` would limit callers to apps inside the environment, which the Function
//   App (Flex Consumption, VNet-integrated) is not.
// * Data lives on an Azure Files share mounted at /qdrant/storage. SMB mounts need the
//   account key, so the share has its own storage account (the app's account keeps shared
//   keys off); the key goes only into the environment's storage definition, never into an
//   app setting.
// * Exactly one replica: Qdrant must be the single writer of its storage directory.
// * The API key comes from Key Vault (Container App secret with keyVaultUrl), read through a
//   user-assigned identity that gets Key Vault Secrets User before the app is created.
param location string
param tags object
param environmentName string
param appName string
param identityName string
param storageAccountName string
param storageSku string
param shareQuotaGiB int
param image string
param cpu string
param memory string
param infrastructureSubnetId string
param vnetId string
param logAnalyticsWorkspaceName string
param keyVaultName string
param apiKeySecretName string

var shareName = 'qdrant-storage'
var keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'
var isPremium = startsWith(storageSku, 'Premium')

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: logAnalyticsWorkspaceName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

// --- Azure Files share for /qdrant/storage ------------------------------------------------
resource qdrantStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  tags: tags
  kind: isPremium ? 'FileStorage' : 'StorageV2'
  sku: {
    name: storageSku
  }
  properties: {
    allowBlobPublicAccess: false
    allowSharedKeyAccess: true // SMB mounts in Container Apps authenticate with the account key
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    largeFileSharesState: isPremium ? null : 'Enabled'
  }

  resource fileService 'fileServices' = {
    name: 'default'
    properties: {
      shareDeleteRetentionPolicy: {
        enabled: true
        days: 7
      }
    }

    resource share 'shares' = {
      name: shareName
      properties: {
        shareQuota: shareQuotaGiB
        enabledProtocols: 'SMB'
      }
    }
  }
}

// --- Identity that reads the API key from Key Vault ---------------------------------------
resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: identityName
  location: location
  tags: tags
}

resource identitySecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, keyVaultSecretsUserRoleId)
  scope: vault
  properties: {
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUserRoleId)
  }
}

// --- Container Apps environment (internal, in the VNet) -----------------------------------
resource containerEnv 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: environmentName
  location: location
  tags: tags
  properties: {
    vnetConfiguration: {
      infrastructureSubnetId: infrastructureSubnetId
      internal: true
    }
    workloadProfiles: [
      {
        name: 'Consumption'
        workloadProfileType: 'Consumption'
      }
    ]
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logAnalytics.properties.customerId
        sharedKey: logAnalytics.listKeys().primarySharedKey
      }
    }
  }

  resource qdrantVolume 'storages' = {
    name: 'qdrantfiles'
    properties: {
      azureFile: {
        accountName: qdrantStorage.name
        accountKey: qdrantStorage.listKeys().keys[0].value
        shareName: shareName
        accessMode: 'ReadWrite'
      }
    }
    dependsOn: [
      qdrantStorage::fileService::share
    ]
  }
}

module privateDns 'private-dns.bicep' = {
  name: 'qdrant-private-dns'
  params: {
    tags: tags
    zoneName: containerEnv.properties.defaultDomain
    staticIp: containerEnv.properties.staticIp
    vnetId: vnetId
  }
}

// --- Qdrant --------------------------------------------------------------------------------
resource qdrantApp 'Microsoft.App/containerApps@2024-03-01' = {
  name: appName
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    environmentId: containerEnv.id
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: true
        targetPort: 6333
        transport: 'http'
        allowInsecure: false
      }
      secrets: [
        {
          name: 'qdrant-api-key'
          keyVaultUrl: '${vault.properties.vaultUri}secrets/${apiKeySecretName}'
          identity: identity.id
        }
      ]
    }
    template: {
      containers: [
        {
          name: 'qdrant'
          image: image
          resources: {
            cpu: json(cpu)
            memory: memory
          }
          env: [
            {
              name: 'QDRANT__SERVICE__API_KEY'
              secretRef: 'qdrant-api-key'
            }
            {
              // Snapshots on the share, not on the replica's small ephemeral disk; the
              // backup timer uploads them to Blob and deletes them here.
              name: 'QDRANT__STORAGE__SNAPSHOTS_PATH'
              value: '/qdrant/storage/snapshots'
            }
            {
              name: 'QDRANT__TELEMETRY_DISABLED'
              value: 'true'
            }
          ]
          volumeMounts: [
            {
              volumeName: 'qdrant-storage'
              mountPath: '/qdrant/storage'
            }
          ]
          probes: [
            {
              type: 'Startup'
              httpGet: {
                path: '/livez'
                port: 6333
              }
              periodSeconds: 10
              failureThreshold: 30
            }
            {
              type: 'Liveness'
              httpGet: {
                path: '/livez'
                port: 6333
              }
              periodSeconds: 30
              failureThreshold: 3
            }
            {
              type: 'Readiness'
              httpGet: {
                path: '/readyz'
                port: 6333
              }
              periodSeconds: 10
              failureThreshold: 3
            }
          ]
        }
      ]
      volumes: [
        {
          name: 'qdrant-storage'
          storageType: 'AzureFile'
          storageName: containerEnv::qdrantVolume.name
          mountOptions: 'nobrl,mfsymlinks'
        }
      ]
      scale: {
        minReplicas: 1
        maxReplicas: 1
      }
    }
  }
  dependsOn: [
    identitySecretsUser
  ]
}

output appName string = qdrantApp.name
output fqdn string = qdrantApp.properties.configuration.ingress.fqdn
// Explicit :443 because qdrant-client defaults to port 6333 when the URL has none.
output url string = 'https://${qdrantApp.properties.configuration.ingress.fqdn}:443'
