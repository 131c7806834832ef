// One VNet, two subnets, both delegated to Microsoft.App/environments:
//   snet-aca   the Container Apps environment running Qdrant (internal: no public IP)
//   snet-func  the Function App's outbound VNet integration (Flex Consumption)
// The Function App reaches Qdrant only through this VNet.
param location string
param tags object
param vnetName string
param addressPrefix string

// /23 for the environment (workload-profiles environments need at least /27; leave room),
// /24 for the Function App integration (one address per scaled-out instance).
var acaPrefix = cidrSubnet(addressPrefix, 23, 0)
var funcPrefix = cidrSubnet(addressPrefix, 24, 2)

resource vnet 'Microsoft.Network/virtualNetworks@2024-01-01' = {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'snet-aca'
        properties: {
          addressPrefix: acaPrefix
          delegations: [
            {
              name: 'aca'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: 'snet-func'
        properties: {
          addressPrefix: funcPrefix
          delegations: [
            {
              name: 'flex'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
    ]
  }
}

output vnetId string = vnet.id
output containerAppsSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, 'snet-aca')
output functionSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, 'snet-func')
