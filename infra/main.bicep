// livecommerce-rag: everything the Functions app needs in one resource group.
//
//   az deployment group create -g <rg> -f infra/main.bicep -p infra/main.dev.parameters.json \
//      -p qdrantApiKey=<first deployment only> apiKeysJson=<first deployment only>
//   azd up            (uses infra/main.parameters.json)
//
// Layout (see docs/operations.md):
//   monitoring  Log Analytics workspace + workspace-based Application Insights
//   network     VNet: one subnet for the Container Apps environment, one for the
//               Function App's VNet integration (both delegated to Microsoft.App/environments)
//   storage     the app's storage account (identity only, shared keys off): containers,
//               queues, table, the Flex Consumption deployment container
//   keyvault    RBAC-mode Key Vault with the Qdrant API key and the app's API keys
//   qdrant      Qdrant on Azure Container Apps (internal environment, Azure Files volume)
//   functionapp Flex Consumption plan + Function App (system-assigned identity), its
//               app settings and every role assignment of that identity
targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------
// General
// ---------------------------------------------------------------------------------------
@minLength(1)
@maxLength(24)
@description('Environment name (dev, prod, or an azd environment name); part of every resource name.')
param environmentName string

@description('Region of every resource (Flex Consumption must be offered there: az functionapp list-flexconsumption-locations).')
param location string = resourceGroup().location

@description('Object id of the person or pipeline that deploys; gets Key Vault Secrets Officer so it can set and rotate secrets. Empty = none.')
param principalId string = ''

@allowed(['User', 'ServicePrincipal', 'Group'])
@description('Kind of principalId.')
param principalType string = 'User'

param tags object = {}

// ---------------------------------------------------------------------------------------
// Function App (Flex Consumption)
// ---------------------------------------------------------------------------------------
@allowed([512, 2048, 4096])
@description('Memory of each Flex Consumption instance, MB (CPU scales with it). Video decoding and OCR want 2048 or more.')
param functionInstanceMemoryMB int = 2048

@minValue(1)
@maxValue(1000)
@description('Upper bound of Flex Consumption scale-out.')
param functionMaximumInstanceCount int = 40

@minValue(0)
@description('Always-ready instances for the HTTP trigger group (0 = scale to zero, cold starts possible).')
param functionAlwaysReadyHttpInstances int = 0

@description('Blob-triggered functions to wire to Event Grid (Flex Consumption supports only the Event Grid blob trigger source). Each item: { functionName: string, container: string }. Leave empty on the first deployment: the webhook key exists only after the code is deployed.')
param blobTriggerSubscriptions array = []

// ---------------------------------------------------------------------------------------
// Qdrant on Azure Container Apps
// ---------------------------------------------------------------------------------------
@description('Qdrant image, pinned to an exact version (never latest). Keep within one minor version of qdrant-client in requirements.txt.')
param qdrantImage string = 'qdrant/qdrant:v1.19.1'

@description('vCPU of the Qdrant container (Consumption profile: 0.25 steps up to 4).')
param qdrantCpu string = '1.0'

@description('Memory of the Qdrant container (2 GiB per vCPU on the Consumption profile).')
param qdrantMemory string = '2Gi'

@minValue(1)
@description('Quota of the Azure Files share mounted at /qdrant/storage, GiB.')
param qdrantShareQuotaGiB int = 100

@allowed(['Standard_LRS', 'Standard_ZRS', 'Premium_LRS', 'Premium_ZRS'])
@description('SKU of the storage account that holds the Qdrant file share (Premium = FileStorage, lower latency).')
param qdrantStorageSku string = 'Standard_LRS'

@description('Key Vault purge protection (cannot be turned off again once on). Off in dev so a torn-down environment can be recreated under the same vault name; on in prod.')
param keyVaultPurgeProtection bool = true

@secure()
@description('Qdrant API key. Written to Key Vault only when non-empty: pass it on the first deployment (or let azd generate it), omit it afterwards so Key Vault stays the source of truth.')
param qdrantApiKey string = ''

@description('Address space of the VNet shared by the Container Apps environment and the Function App integration.')
param vnetAddressPrefix string = '10.60.0.0/16'

// ---------------------------------------------------------------------------------------
// Azure OpenAI (existing resource and deployments; this template creates neither)
// ---------------------------------------------------------------------------------------
@description('Name of the existing Azure OpenAI (or AI Services) resource. When set, the Function identity gets Cognitive Services OpenAI User on it and the endpoint defaults to https://<name>.openai.azure.com/.')
param azureOpenAiResourceName string = ''

@description('Resource group of that resource (same subscription). Empty = this resource group.')
param azureOpenAiResourceGroup string = ''

@description('Azure OpenAI endpoint; overrides the one derived from azureOpenAiResourceName (use it for a resource in another subscription and grant the role yourself).')
param azureOpenAiEndpoint string = ''

@description('Deployment name of the embedding model (EMBEDDING_MODEL).')
param embeddingDeployment string = 'text-embedding-3-small'

param embeddingApiVersion string = '2024-02-01'

@description('Deployment name of the vision model used for sales-screenshot OCR (VISION_MODEL).')
param visionDeployment string = 'gpt-4o'

param visionApiVersion string = '2024-10-21'

@description('Chat deployment that writes the liver page\'s improvement suggestions from the rule-derived contrasts (AZURE_OPENAI_CHAT_DEPLOYMENT, e.g. gpt-4o); empty = the rule text only.')
param chatDeployment string = ''

// ---------------------------------------------------------------------------------------
// Application behaviour
// ---------------------------------------------------------------------------------------
@description('Qdrant collection name (QDRANT_COLLECTION); the stream-level collection is <name>_streams.')
param qdrantCollection string = 'video_analysis_knowledge'

@description('NCRONTAB (6 fields, UTC) of the snapshot timer (SNAPSHOT_SCHEDULE). Default 18:00 UTC = 03:00 JST.')
param snapshotSchedule string = '0 0 18 * * *'

@minValue(1)
@description('How many snapshots to keep in qdrant-snapshots/ (SNAPSHOT_RETENTION).')
param snapshotRetention int = 7

@minValue(1)
@description('Deliveries of a queue message before it goes to <queue>-poison. Sets both MAX_DEQUEUE_COUNT and the host\'s queues.maxDequeueCount so they cannot drift.')
param maxDequeueCount int = 5

@minValue(1024)
@description('Largest accepted upload, bytes (MAX_UPLOAD_BYTES); larger requests get 413.')
param maxUploadBytes int = 10485760

@description('Hosts that video_url may point to (VIDEO_URL_ALLOWED_HOSTS).')
param videoUrlAllowedHosts array = []

@secure()
@description('JSON list of API keys, e.g. [{"name":"lcj","key":"...","brand_id":null}]. Written to Key Vault only when non-empty (first deployment, or a deliberate reset); rotate in Key Vault afterwards.')
param apiKeysJson string = ''

@allowed(['DEBUG', 'INFO', 'WARNING', 'ERROR'])
param logLevel string = 'INFO'

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------
var token = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var env = toLower(environmentName)
var envTag = union(tags, { 'azd-env-name': environmentName })
var names = {
  logAnalytics: 'log-lcrag-${env}'
  appInsights: 'appi-lcrag-${env}'
  vnet: 'vnet-lcrag-${env}'
  storage: take('stlcrag${token}', 24)
  qdrantStorage: take('stqdr${token}', 24)
  keyVault: take('kv-lcrag-${token}', 24)
  containerEnv: 'cae-lcrag-${env}'
  qdrantApp: take('ca-qdrant-${env}', 32)
  qdrantIdentity: 'id-qdrant-${env}'
  plan: 'plan-lcrag-${env}'
  functionApp: 'func-lcrag-${env}-${take(token, 6)}'
}

// The storage layout the code expects (defaults of rag_core/base/settings.py); the same
// values go into the app settings, so resources and settings cannot disagree.
var storageLayout = {
  uploadsContainer: 'uploads'
  inboxContainer: 'analyses-inbox'
  rejectedContainer: 'analyses-inbox-rejected'
  snapshotsContainer: 'qdrant-snapshots'
  deploymentContainer: 'app-package-${token}'
  ingestQueue: 'ingest-jobs'
  jobsTable: 'ingestjobs'
}

var derivedOpenAiEndpoint = empty(azureOpenAiResourceName) ? '' : 'https://${azureOpenAiResourceName}.openai.azure.com/'
var openAiEndpoint = empty(azureOpenAiEndpoint) ? derivedOpenAiEndpoint : azureOpenAiEndpoint

// ---------------------------------------------------------------------------------------
// Modules
// ---------------------------------------------------------------------------------------
module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    location: location
    tags: envTag
    logAnalyticsName: names.logAnalytics
    appInsightsName: names.appInsights
  }
}

module network 'modules/network.bicep' = {
  name: 'network'
  params: {
    location: location
    tags: envTag
    vnetName: names.vnet
    addressPrefix: vnetAddressPrefix
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    location: location
    tags: envTag
    storageAccountName: names.storage
    containers: [
      storageLayout.uploadsContainer
      storageLayout.inboxContainer
      storageLayout.rejectedContainer
      storageLayout.snapshotsContainer
      storageLayout.deploymentContainer
    ]
    queues: [
      storageLayout.ingestQueue
      '${storageLayout.ingestQueue}-poison'
    ]
    tables: [
      storageLayout.jobsTable
    ]
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    location: location
    tags: envTag
    keyVaultName: names.keyVault
    qdrantApiKey: qdrantApiKey
    apiKeysJson: apiKeysJson
    adminPrincipalId: principalId
    adminPrincipalType: principalType
    purgeProtection: keyVaultPurgeProtection
  }
}

module qdrant 'modules/qdrant.bicep' = {
  name: 'qdrant'
  params: {
    location: location
    tags: envTag
    environmentName: names.containerEnv
    appName: names.qdrantApp
    identityName: names.qdrantIdentity
    storageAccountName: names.qdrantStorage
    storageSku: qdrantStorageSku
    shareQuotaGiB: qdrantShareQuotaGiB
    image: qdrantImage
    cpu: qdrantCpu
    memory: qdrantMemory
    infrastructureSubnetId: network.outputs.containerAppsSubnetId
    vnetId: network.outputs.vnetId
    logAnalyticsWorkspaceName: monitoring.outputs.logAnalyticsName
    keyVaultName: keyVault.outputs.name
    apiKeySecretName: keyVault.outputs.qdrantApiKeySecretName
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    location: location
    tags: envTag
    planName: names.plan
    functionAppName: names.functionApp
    instanceMemoryMB: functionInstanceMemoryMB
    maximumInstanceCount: functionMaximumInstanceCount
    alwaysReadyHttpInstances: functionAlwaysReadyHttpInstances
    subnetId: network.outputs.functionSubnetId
    storageAccountName: storage.outputs.name
    deploymentContainerName: storageLayout.deploymentContainer
    appInsightsName: monitoring.outputs.appInsightsName
    keyVaultName: keyVault.outputs.name
    qdrantApiKeySecretName: keyVault.outputs.qdrantApiKeySecretName
    apiKeysSecretName: keyVault.outputs.apiKeysSecretName
    qdrantUrl: qdrant.outputs.url
    qdrantCollection: qdrantCollection
    azureOpenAiEndpoint: openAiEndpoint
    embeddingDeployment: embeddingDeployment
    embeddingApiVersion: embeddingApiVersion
    visionDeployment: visionDeployment
    visionApiVersion: visionApiVersion
    chatDeployment: chatDeployment
    uploadsContainer: storageLayout.uploadsContainer
    inboxContainer: storageLayout.inboxContainer
    rejectedContainer: storageLayout.rejectedContainer
    snapshotsContainer: storageLayout.snapshotsContainer
    ingestQueue: storageLayout.ingestQueue
    jobsTable: storageLayout.jobsTable
    maxUploadBytes: maxUploadBytes
    maxDequeueCount: maxDequeueCount
    snapshotSchedule: snapshotSchedule
    snapshotRetention: snapshotRetention
    videoUrlAllowedHosts: videoUrlAllowedHosts
    logLevel: logLevel
    blobTriggerSubscriptions: blobTriggerSubscriptions
  }
}

// Cognitive Services OpenAI User for the Function identity on the existing resource.
module openAiRole 'modules/openai-role.bicep' = if (!empty(azureOpenAiResourceName)) {
  name: 'openai-role'
  scope: resourceGroup(empty(azureOpenAiResourceGroup) ? resourceGroup().name : azureOpenAiResourceGroup)
  params: {
    openAiResourceName: azureOpenAiResourceName
    principalId: functionApp.outputs.principalId
  }
}

// ---------------------------------------------------------------------------------------
// Outputs (azd stores them in .azure/<env>/.env)
// ---------------------------------------------------------------------------------------
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output SERVICE_API_URI string = functionApp.outputs.url
output QDRANT_URL string = qdrant.outputs.url
output QDRANT_CONTAINER_APP_NAME string = qdrant.outputs.appName
output AZURE_OPENAI_ENDPOINT string = openAiEndpoint
