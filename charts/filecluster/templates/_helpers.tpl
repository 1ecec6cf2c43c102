{{/* Chart name, truncated to the 63 characters Kubernetes allows in names and labels. */}}
{{- define "filecluster.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects: the release name, prefixed with the chart name unless it already contains it. */}}
{{- define "filecluster.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "filecluster.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object the chart creates. */}}
{{- define "filecluster.labels" -}}
helm.sh/chart: {{ include "filecluster.chart" . }}
{{ include "filecluster.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the operator pods. The name differs from the chart's so that they never match
the labels the operator gives file-server pods (app.kubernetes.io/name: filecluster). */}}
{{- define "filecluster.selectorLabels" -}}
app.kubernetes.io/name: {{ include "filecluster.name" . }}-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "filecluster.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "filecluster.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "filecluster.operatorImage" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "filecluster.fileserverImage" -}}
{{- printf "%s:%s" .Values.fileserverImage.repository (default .Chart.AppVersion .Values.fileserverImage.tag) }}
{{- end }}

{{- define "filecluster.leaseName" -}}
{{- default (include "filecluster.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* Labels the operator gives every file-server pod (operator/src/controllers/filecluster/names.ts). */}}
{{- define "filecluster.fileserverPodLabels" -}}
app.kubernetes.io/name: filecluster
app.kubernetes.io/component: fileserver
app.kubernetes.io/managed-by: filecluster-operator
{{- end }}

{{/* Namespaces the NetworkPolicies protect, as a list. */}}
{{- define "filecluster.networkPolicyNamespaces" -}}
{{- $namespaces := .Values.networkPolicy.namespaces | default .Values.watchNamespaces | default (list .Release.Namespace) }}
{{- toYaml $namespaces }}
{{- end }}
