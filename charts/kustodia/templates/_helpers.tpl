{{/* Names. */}}
{{- define "kustodia.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kustodia.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "kustodia.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "kustodia.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kustodia.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kustodia.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "kustodia.tlsSecretName" -}}
{{- printf "%s-tls" (include "kustodia.fullname" .) -}}
{{- end -}}

{{/* Labels. */}}
{{- define "kustodia.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kustodia.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "kustodia.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "kustodia.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: kustodia
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Images: repository@digest when a digest is set, else repository:tag (tag defaults to appVersion). */}}
{{- define "kustodia.imageRef" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (default .appVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "kustodia.image" -}}
{{- include "kustodia.imageRef" (dict "image" .Values.image "appVersion" .Chart.AppVersion) -}}
{{- end -}}

{{- define "kustodia.shimImage" -}}
{{- include "kustodia.imageRef" (dict "image" .Values.shim.image "appVersion" .Chart.AppVersion) -}}
{{- end -}}

{{/* Namespaces the webhook and the policy never touch: the configured ones plus the release namespace. */}}
{{- define "kustodia.excludedNamespaces" -}}
{{- $excluded := concat .Values.webhook.excludedNamespaces (list .Release.Namespace) | uniq -}}
{{- toJson $excluded -}}
{{- end -}}

{{/* The namespaceSelector shared by the MutatingWebhookConfiguration and the policy binding. */}}
{{- define "kustodia.namespaceSelector" -}}
matchLabels:
  kustodia.io/injection: enabled
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values: {{ include "kustodia.excludedNamespaces" . }}
{{- with .Values.webhook.extraNamespaceSelectorExpressions }}
{{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
CEL: the pod opts in (kustodia.io/inject is "true", any case, as the webhook reads it). Used as a
matchCondition by the webhook (so pods that do not opt in never depend on the webhook being up)
and by the policy.
*/}}
{{- define "kustodia.optedIn" -}}
has(object.metadata.annotations) && 'kustodia.io/inject' in object.metadata.annotations && object.metadata.annotations['kustodia.io/inject'].lowerAscii() == 'true'
{{- end -}}

{{/* The Service's DNS names, for the serving certificate. */}}
{{- define "kustodia.dnsNames" -}}
{{- $svc := include "kustodia.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- toJson (concat (list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns)) .Values.tls.extraDnsNames) -}}
{{- end -}}
