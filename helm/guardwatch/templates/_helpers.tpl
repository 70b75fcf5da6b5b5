{{- define "guardwatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "guardwatch.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "guardwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "guardwatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "guardwatch.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "guardwatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "guardwatch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "guardwatch.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* guardwatch.yaml: the user's config with the chart's listen address and rules directory. */}}
{{- define "guardwatch.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $_ := set $cfg "listen" (printf "0.0.0.0:%d" (int .Values.service.port)) -}}
{{- $_ := set $cfg "rules" (list "/etc/guardwatch/rules") -}}
{{- if .Values.staticMembership -}}
{{- $kafka := default dict $cfg.kafka -}}
{{- $props := default dict $kafka.properties -}}
{{- $_ := set $props "group.instance.id" "${POD_NAME}" -}}
{{- $_ := set $kafka "properties" $props -}}
{{- $_ := set $cfg "kafka" $kafka -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{- define "guardwatch.rulesConfigMap" -}}
{{- default (printf "%s-rules" (include "guardwatch.fullname" .)) .Values.existingRulesConfigMap -}}
{{- end -}}

{{- define "guardwatch.rulesChecksumSource" -}}
{{- if .Values.existingRulesConfigMap -}}
{{- .Values.existingRulesConfigMap -}}
{{- else if .Values.rules -}}
{{- toYaml .Values.rules -}}
{{- else -}}
{{- .Files.Get "files/guardrails.yaml" -}}
{{- end -}}
{{- end -}}
