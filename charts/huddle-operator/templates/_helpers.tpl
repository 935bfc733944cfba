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

{{- define "huddle-operator.labels" -}}
{{ include "huddle-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: huddle
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Rules for what the operator owns; bound cluster-wide or in watchNamespace only. */}}
{{- define "huddle-operator.rules" -}}
- apiGroups: ["sip.huddle.dev"]
  resources: ["sipclusters", "sipdns"]
  verbs: ["get", "list", "watch", "update"]
- apiGroups: ["sip.huddle.dev"]
  resources: ["sipclusters/status", "sipdns/status"]
  verbs: ["get", "update"]
# ownerReferences with blockOwnerDeletion need update on the owner's finalizers subresource.
- apiGroups: ["sip.huddle.dev"]
  resources: ["sipclusters/finalizers"]
  verbs: ["update"]
# delete (and list, to find them) on the kinds it renders only: owned objects a SipCluster no
# longer wants are pruned.
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services", "configmaps"]
  verbs: ["get", "list", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
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
