{{- define "huddle-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "huddle-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The NATS cluster's pods (nats.cluster): labels of their own, outside the operator's selector. */}}
{{- define "huddle-operator.natsSelectorLabels" -}}
app.kubernetes.io/name: huddle-nats
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "huddle-operator.natsLabels" -}}
{{ include "huddle-operator.natsSelectorLabels" . }}
app.kubernetes.io/component: nats
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: huddle
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The NATS the operator and, by default, every SipCluster use: the chart's cluster when enabled. */}}
{{- define "huddle-operator.natsUrl" -}}
{{- if .Values.nats.cluster.enabled -}}
{{- printf "nats://%s-nats.%s.svc:4222" (include "huddle-operator.fullname" .) .Release.Namespace -}}
{{- else -}}
{{- .Values.nats.url -}}
{{- end -}}
{{- end -}}

{{- define "huddle-operator.labels" -}}
{{ include "huddle-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: huddle
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The namespaces the operator reconciles, comma-separated (WATCH_NAMESPACE); empty when clusterWide. */}}
{{- define "huddle-operator.watchNamespaces" -}}
{{- if .Values.clusterWide -}}
{{- if .Values.watchNamespaces }}{{ fail "watchNamespaces must be empty with clusterWide: true" }}{{ end -}}
{{- else -}}
{{- .Values.watchNamespaces | default (list .Release.Namespace) | join "," -}}
{{- end -}}
{{- end -}}

{{/*
Rules for what the operator does, bound in each watched namespace (or cluster-wide): exactly the
calls of operator/ (informers list+watch; apply.ts get, create, patch; prune.ts list, delete;
the finalizer and status writes are updates). No secrets: pods mount them, the operator never reads them.
*/}}
{{- define "huddle-operator.rules" -}}
- apiGroups: ["sip.huddle.dev"]
  resources: ["sipclusters"]
  verbs: ["list", "watch", "update"]
- apiGroups: ["sip.huddle.dev"]
  resources: ["sipdns"]
  verbs: ["list", "watch"]
- apiGroups: ["sip.huddle.dev"]
  resources: ["sipclusters/status", "sipdns/status"]
  verbs: ["update"]
# ownerReferences with blockOwnerDeletion need update on the owner's finalizers subresource.
- apiGroups: ["sip.huddle.dev"]
  resources: ["sipclusters/finalizers"]
  verbs: ["update"]
# delete (and list, to find them) on the kinds it renders only: owned objects a SipCluster no
# longer wants are pruned. Only the workloads are watched (their status is the SipCluster's).
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services", "configmaps"]
  verbs: ["get", "list", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "create", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# Even when switched off: the operator removes the ServiceMonitors it rendered while it was on.
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors"]
  verbs: ["list", "delete"]
{{- if .Values.serviceMonitor.enabled }}
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors"]
  verbs: ["get", "create", "patch"]
{{- end }}
{{- end -}}

{{/* An alert's runbook: its section of docs/runbooks.md (the heading is the alert name, GitHub's anchor its lower case). */}}
{{- define "huddle-operator.runbook" -}}
{{ printf "%s#%s" .root.Values.prometheusRule.runbookBaseUrl (lower .alert) | quote }}
{{- end -}}
