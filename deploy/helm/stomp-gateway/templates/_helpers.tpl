{{/* The release's resource name: <release>-stomp-gateway, or the release name if it already says so. */}}
{{- define "stomp-gateway.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "stomp-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "stomp-gateway.labels" -}}
{{ include "stomp-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "stomp-gateway.secretName" -}}
{{- .Values.auth.existingSecret | default (include "stomp-gateway.fullname" .) -}}
{{- end -}}

{{/* SIGKILL must never cut the preStop pause, the drain or the shutdown short. */}}
{{- define "stomp-gateway.terminationGracePeriod" -}}
{{- $s := .Values.shutdown -}}
{{- add $s.preStopSeconds $s.drainPeriod $s.shutdownTimeout $s.marginSeconds -}}
{{- end -}}

{{/* Fail the render when a required value is missing. */}}
{{- define "stomp-gateway.validate" -}}
{{- if not .Values.kafka.bootstrap -}}
{{- fail "kafka.bootstrap is required: the Kafka bootstrap servers (host:port[,host:port])" -}}
{{- end -}}
{{- if not .Values.auth.existingSecret -}}
{{- if not .Values.mongodb.uri -}}
{{- fail "mongodb.uri is required: the chat history's MongoDB URI" -}}
{{- end -}}
{{- if and .Values.auth.jwtSecret .Values.auth.jwtPublicKey -}}
{{- fail "give auth.jwtSecret or auth.jwtPublicKey, not both" -}}
{{- end -}}
{{- if not (or .Values.auth.jwtSecret .Values.auth.jwtPublicKey) -}}
{{- fail "auth.jwtSecret (HS256) or auth.jwtPublicKey (RS256/ES256 PEM) is required: without one, any client may connect as anyone" -}}
{{- end -}}
{{- end -}}
{{- if lt (int .Values.replicaCount) 2 -}}
{{- fail "replicaCount must be at least 2" -}}
{{- end -}}
{{- end -}}
