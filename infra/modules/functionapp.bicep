// Flex Consumption plan + Python 3.11 Function App with a system-assigned identity, its app
// settings, and every role that identity needs. No storage keys anywhere: the host and the
// code both use AzureWebJobsStorage__accountName + the managed identity.
param location string
param tags object
param planName string
param functionAppName string
param instanceMemoryMB int
param maximumInstanceCount int
param alwaysReadyHttpInstances int
param subnetId string
param storageAccountName string
param deploymentContainerName string
param appInsightsName string
param keyVaultName string
param qdrantApiKeySecretName string
param apiKeysSecretName string
param qdrantUrl string
param qdrantCollection string
param azureOpenAiEndpoint string
param embeddingDeployment string
param embeddingApiVersion string
param visionDeployment string
param visionApiVersion string
param chatDeployment string
param uploadsContainer string
param inboxContainer string
param rejectedContainer string
param snapshotsContainer string
param ingestQueue string
param jobsTable string
param maxUploadBytes int
param maxDequeueCount int
param snapshotSchedule string
param snapshotRetention int
param videoUrlAllowedHosts array
param logLevel string
param blobTriggerSubscriptions array

// Built-in role definition ids (identical in every tenant).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

var keyVaultSecretsUri = '${vault.properties.vaultUri}secrets'

// App settings. Every setting rag_core/base/settings.py reads must either be here or be listed,
// with the reason, in SAFE_DEFAULTS of tests/test_infra.py (the test fails otherwise).
// Not allowed on Flex Consumption and therefore absent: FUNCTIONS_WORKER_RUNTIME,
// FUNCTIONS_EXTENSION_VERSION, WEBSITE_RUN_FROM_PACKAGE, WEBSITE_CONTENT* (the runtime and
// the deployment source are in functionAppConfig instead).
var appSettings = {
  // --- Functions host --------------------------------------------------------------------
  AzureWebJobsStorage__accountName: storage.name // host + triggers + code (STORAGE_ACCOUNT_NAME)
  AzureFunctionsJobHost__extensions__queues__maxDequeueCount: string(maxDequeueCount)
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsights.properties.ConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD'

  // --- Storage (names of the resources storage.bicep created) -----------------------------
  // The code's connection-string default is UseDevelopmentStorage=true (Azurite); an empty
  // STORAGE_CONNECTION_STRING switches it off so the account name + identity are used.
  // AzureWebJobsStorage itself stays unset: the host must use the identity-based settings.
  STORAGE_CONNECTION_STRING: ''
  UPLOADS_CONTAINER: uploadsContainer
  INBOX_CONTAINER: inboxContainer
  REJECTED_CONTAINER: rejectedContainer
  SNAPSHOTS_CONTAINER: snapshotsContainer
  INGEST_QUEUE: ingestQueue
  JOBS_TABLE: jobsTable
  MAX_UPLOAD_BYTES: string(maxUploadBytes)
  MAX_DEQUEUE_COUNT: string(maxDequeueCount)

  // --- Qdrant ----------------------------------------------------------------------------
  QDRANT_URL: qdrantUrl
  QDRANT_API_KEY: '@Microsoft.KeyVault(SecretUri=${keyVaultSecretsUri}/${qdrantApiKeySecretName})'
  QDRANT_COLLECTION: qdrantCollection

  // --- Azure OpenAI (existing deployments; identity, no key) ------------------------------
  AZURE_OPENAI_ENDPOINT: azureOpenAiEndpoint
  EMBEDDING_PROVIDER: 'azure'
  EMBEDDING_MODEL: embeddingDeployment
  EMBEDDING_API_VERSION: embeddingApiVersion
  SALES_OCR_PROVIDER: 'azure'
  VISION_MODEL: visionDeployment
  VISION_API_VERSION: visionApiVersion
  AZURE_OPENAI_CHAT_DEPLOYMENT: chatDeployment

  // --- Backups ---------------------------------------------------------------------------
  SNAPSHOT_SCHEDULE: snapshotSchedule // also read by the timer trigger as %SNAPSHOT_SCHEDULE%
  SNAPSHOT_RETENTION: string(snapshotRetention)

  // --- HTTP API --------------------------------------------------------------------------
  API_KEYS: '@Microsoft.KeyVault(SecretUri=${keyVaultSecretsUri}/${apiKeysSecretName})'
  VIDEO_URL_ALLOWED_HOSTS: string(videoUrlAllowedHosts)
  LOG_LEVEL: logLevel
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true // Linux
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    virtualNetworkSubnetId: subnetId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'SystemAssignedIdentity'
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        alwaysReady: alwaysReadyHttpInstances > 0 ? [
          {
            name: 'http'
            instanceCount: alwaysReadyHttpInstances
          }
        ] : []
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// --- Role assignments of the Function identity ---------------------------------------------
// Blob Data Owner: host state (leases, timer schedule), Flex deployment package, blob triggers
// and the app's containers. Queue Data Contributor: queue trigger, poison queue, blob-trigger
// receipts. Table Data Contributor: job status table.
resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionApp.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionApp.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionApp.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
  }
}

// Key Vault references in app settings (QDRANT_API_KEY, API_KEYS).
resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, functionApp.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

// Telemetry with Entra ID auth (the component has local auth disabled).
resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, functionApp.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

// The app settings, applied once the identity holds its roles so the host's first start can
// reach storage and resolve the Key Vault references. (A child config resource, because a
// property loop over runtime values such as the App Insights connection string is not allowed.)
resource functionAppSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: functionApp
  name: 'appsettings'
  properties: appSettings
  dependsOn: [
    blobOwner
    queueContributor
    tableContributor
    secretsUser
    metricsPublisher
  ]
}

// --- Event Grid blob trigger wiring (Flex Consumption has no polling blob trigger) ---------
// The webhook needs the host's blobs_extension system key, which exists only after the code
// is deployed: deploy once with blobTriggerSubscriptions = [], deploy the code, then
// provision again with the list filled in (docs/operations.md, "Deploy").
var hostKeysId = resourceId('Microsoft.Web/sites/host', functionApp.name, 'default')

resource blobEvents 'Microsoft.EventGrid/systemTopics@2022-06-15' = if (!empty(blobTriggerSubscriptions)) {
  name: 'evgt-${storage.name}'
  location: location
  tags: tags
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

resource blobEventSubscriptions 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = [for sub in blobTriggerSubscriptions: {
  parent: blobEvents
  name: toLower('${sub.functionName}-${sub.container}')
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: 'https://${functionApp.properties.defaultHostName}/runtime/webhooks/blobs?functionName=Host.Functions.${sub.functionName}&code=${listKeys(hostKeysId, '2024-04-01').systemKeys.blobs_extension}'
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.Storage.BlobCreated'
      ]
      subjectBeginsWith: '/blobServices/default/containers/${sub.container}/'
    }
    eventDeliverySchema: 'EventGridSchema'
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
  dependsOn: [
    functionAppSettings
  ]
}]

output name string = functionApp.name
output principalId string = functionApp.identity.principalId
output url string = 'https://${functionApp.properties.defaultHostName}'
