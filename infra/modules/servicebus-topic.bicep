// One topic of infra/topology.json with its subscriptions and their SQL rules.
// Each rule carries the topology's name; '$Default' replaces the catch-all rule a new
// subscription gets, so no window exists in which everything matches.
param namespaceName string

@description('One element of topology.json topics: name, duplicate detection, TTL, subscriptions[].')
param topic object

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: namespaceName
}

resource serviceBusTopic 'Microsoft.ServiceBus/namespaces/topics@2024-01-01' = {
  parent: namespace
  name: topic.name
  properties: {
    requiresDuplicateDetection: topic.requiresDuplicateDetection
    duplicateDetectionHistoryTimeWindow: topic.duplicateDetectionHistoryTimeWindow
    defaultMessageTimeToLive: topic.defaultMessageTimeToLive
    enableBatchedOperations: true
    supportOrdering: false
  }
}

resource subscriptions 'Microsoft.ServiceBus/namespaces/topics/subscriptions@2024-01-01' = [for sub in topic.subscriptions: {
  parent: serviceBusTopic
  name: sub.name
  properties: {
    lockDuration: sub.lockDuration
    maxDeliveryCount: sub.maxDeliveryCount
    defaultMessageTimeToLive: sub.defaultMessageTimeToLive
    deadLetteringOnMessageExpiration: sub.deadLetteringOnMessageExpiration
    deadLetteringOnFilterEvaluationExceptions: sub.deadLetteringOnFilterEvaluationExceptions
    enableBatchedOperations: true
    requiresSession: false
  }
}]

resource rules 'Microsoft.ServiceBus/namespaces/topics/subscriptions/rules@2024-01-01' = [for (sub, i) in topic.subscriptions: {
  parent: subscriptions[i]
  name: sub.rule.name
  properties: {
    filterType: 'SqlFilter'
    sqlFilter: {
      sqlExpression: sub.rule.sqlFilter
      compatibilityLevel: 20
    }
  }
}]

output name string = serviceBusTopic.name
