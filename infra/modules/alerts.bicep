// Action group (e-mail) and the alerts operators act on: dead letters, failures, throttling.
param actionGroupName string
param baseName string
param location string
param tags object = {}
param alertEmail string
param serviceBusNamespaceId string
param appInsightsId string

@minValue(1)
param failureThreshold int = 5

@minValue(1)
param throttlingThreshold int = 50

// Records a daily reconciliation found drifted (changed behind the integration's back) before an alert.
@minValue(1)
param reconcileDriftThreshold int = 25

// Anomaly flags of one kind in an hour tolerated before an alert (0: every flag alerts).
@minValue(0)
param anomalyThreshold int = 0

resource actionGroup 'Microsoft.Insights/actionGroups@2024-10-01-preview' = {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: take('sync-${baseName}', 12)
    enabled: true
    emailReceivers: [
      {
        name: 'operators'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// Any dead-lettered message on any topic of the namespace. The metric's EntityName dimension is
// the topic; look at each subscription's DLQ (Service Bus Explorer, syncctl dlq list) for the flow.
// The alert keeps firing until the dead letters are resubmitted or purged (the DLQ never expires).
resource deadLetterAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-${baseName}-dead-letters'
  location: 'global'
  tags: tags
  properties: {
    description: 'Messages are in a Service Bus dead-letter queue. See docs/operations.md (dead letters).'
    severity: 2
    enabled: true
    scopes: [
      serviceBusNamespaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          name: 'DeadletteredMessages'
          criterionType: 'StaticThresholdCriterion'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'DeadletteredMessages'
          timeAggregation: 'Maximum'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
        }
      ]
    }
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}

// Failed function executions plus exceptions, from the Application Insights the app writes to.
resource failureAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-${baseName}-failures'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Sync: failed executions and exceptions'
    description: 'Failed function executions plus exceptions exceeded the threshold in 15 minutes.'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: 'union (requests | where success == false), exceptions'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: failureThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// Throttling by Brightpearl (503 over its request cap) or Dataverse (429 service protection).
// ASSUMPTION (docs/operations.md): outgoing HTTP calls appear as dependencies with their status
// code when instrumented, and the settlement adapter logs the reason codes BrightpearlThrottled /
// DataverseThrottled from shared/resilience.py in its trace messages. Either source counts.
resource throttlingAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-${baseName}-throttling'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Sync: throttling rate high'
    description: 'Brightpearl/Dataverse throttled more calls than the threshold in 15 minutes. Flows retry automatically; sustained throttling means the load or the budgets need attention.'
    severity: 3
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: 'union (dependencies | where resultCode in ("429", "503")), (traces | where message has_any ("BrightpearlThrottled", "DataverseThrottled"))'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: throttlingThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// Reconciliation drift: each run (the daily timer, syncctl reconcile) emits its counts per kind as
// the metric bpsync.reconcile_findings (shared/reconcile/engine.py); more drifted records in a day
// than the threshold means changes are bypassing the integration (lost webhooks, a stopped poller).
resource reconcileDriftAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-${baseName}-reconcile-drift'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Sync: reconciliation found drift'
    description: 'A reconciliation run found more drifted records than the threshold. Read the report (syncctl reconcile customers --last) and heal with --heal; see docs/operations.md, Reconciliation.'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'P1D'
    autoMitigate: false
    criteria: {
      allOf: [
        {
          query: 'customMetrics | where name == "bpsync.reconcile_findings" and tostring(customDimensions.kind) == "drift" | extend drift = valueSum'
          timeAggregation: 'Total'
          metricMeasureColumn: 'drift'
          operator: 'GreaterThan'
          threshold: reconcileDriftThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// Anomalies (shared/anomaly): every flag is the custom event bpsync.anomaly with its kind
// (OrderValue, StockDepleted, StockMismatch, DeadLetterSpike, DeletionSpike, EmailChurn) as a
// custom dimension, also written to the audit (flow anomalies). One alert per kind over the threshold.
resource anomalyAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-${baseName}-anomalies'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Sync: anomaly flagged'
    description: 'Anomaly detection flagged records (an unusual order value, stock at zero or out of step, a spike in dead letters or deletions, a customer e-mail changing too often). Flags never block a sync unless ANOMALY_HOLD_FOR_REVIEW holds them; see docs/operations.md, Anomalies.'
    severity: 3
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: 'customEvents | where name == "bpsync.anomaly" | extend kind = tostring(customDimensions.kind)'
          timeAggregation: 'Count'
          dimensions: [
            {
              name: 'kind'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: anomalyThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

output actionGroupId string = actionGroup.id
