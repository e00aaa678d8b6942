{{/* Chart name, overridable. */}}
{{- define "ecs-vnc-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name when it already contains the chart name. */}}
{{- define "ecs-vnc-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ecs-vnc-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ecs-vnc-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "ecs-vnc-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "ecs-vnc-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ecs-vnc-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ecs-vnc-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The operator's Kubernetes calls, and nothing else: it reads and watches sessions and writes only
their status (no patch on vncsessions: its token cannot rewrite a grant), reads the Secrets they
reference (get, plus a metadata-only list/watch that notices credential changes), and records
Events (kube-rs's Recorder creates an Event, then patches it as a series when it repeats).
*/}}
{{- define "ecs-vnc-operator.rules" -}}
- apiGroups: ["ecsvnc.dev"]
  resources: ["vncsessions"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["ecsvnc.dev"]
  resources: ["vncsessions/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- if .Values.operator.keylessSessions }}
# Keyless sessions: the ServiceAccount a session names (metadata watch for its role annotation)
# and a short-lived token of it for STS. Whoever may write a VncSession in a namespace can have
# the operator use that namespace's annotated ServiceAccounts. The operator asks only for the
# audience sts.aliyuncs.com, but RBAC cannot limit the audience of the tokens it may create.
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["serviceaccounts/token"]
  verbs: ["create"]
{{- end }}
{{- end }}

{{/* The image: repository:tag, pinned with @digest when image.digest is set. */}}
{{- define "ecs-vnc-operator.image" -}}
{{- $ref := printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- with .Values.image.digest }}
{{- $ref = printf "%s@%s" $ref . }}
{{- end }}
{{- $ref }}
{{- end }}

{{/* Values the schema cannot express. */}}
{{- define "ecs-vnc-operator.validate" -}}
{{- if and .Values.rrsa.enabled (not .Values.rrsa.roleArn) }}
{{- fail "rrsa.enabled needs rrsa.roleArn: the RAM role the operator's token is exchanged for" }}
{{- end }}
{{- if and .Values.rrsa.enabled .Values.credentials.existingSecret }}
{{- fail "rrsa.enabled and credentials.existingSecret both give the operator credentials; the AccessKey would win and RRSA go unused: set one" }}
{{- end }}
{{- if and .Values.operator.keylessSessions (not .Values.operator.oidcProviderArn) }}
{{- fail "operator.keylessSessions needs operator.oidcProviderArn: the cluster's RRSA OIDC provider that ServiceAccount tokens are exchanged through" }}
{{- end }}
{{- if and .Values.rrsa.enabled (not .Values.operator.oidcProviderArn) }}
{{- fail "rrsa.enabled needs operator.oidcProviderArn: the cluster's RRSA OIDC provider" }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail (printf "replicaCount %d needs leaderElection.enabled=true: without the leader Lease every replica would issue URLs" (int .Values.replicaCount)) }}
{{- end }}
{{- end }}
