// Log Analytics workspace and a workspace-based Application Insights component.
// Local (instrumentation-key) auth is off: the Function App sends telemetry with its
// managed identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING=Authorization=AAD plus the
// Monitoring Metrics Publisher role, both set in functionapp.bicep).
param location string
param tags object
param logAnalyticsName string
param appInsightsName string

@minValue(30)
param retentionInDays int = 30

resource logAnalytics 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logAnalytics.id
    DisableLocalAuth: true
  }
}

output logAnalyticsName string = logAnalytics.name
output logAnalyticsId string = logAnalytics.id
output appInsightsName string = appInsights.name
