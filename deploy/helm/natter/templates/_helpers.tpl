{{/* Names: the release name, or release-natter when it does not say natter already. */}}
{{- define "natter.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "natter.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "natter.labels" -}}
{{ include "natter.selectorLabels" . }}
app.kubernetes.io/part-of: natter
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "natter.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* http or https, ws or wss: what the public hosts speak. */}}
{{- define "natter.httpScheme" -}}{{ ternary "https" "http" .Values.public.tls }}{{- end -}}
{{- define "natter.wsScheme" -}}{{ ternary "wss" "ws" .Values.public.tls }}{{- end -}}
{{- define "natter.webOrigin" -}}{{ include "natter.httpScheme" . }}://{{ .Values.public.webHost }}{{- end -}}

{{/* The edges' worker ids, comma separated: workerIdStart .. workerIdStart + replicas - 1. */}}
{{- define "natter.edgeIds" -}}
{{- $ids := list -}}
{{- range $i := until (int .Values.edge.replicas) -}}
{{- $ids = append $ids (add $.Values.edge.workerIdStart $i) -}}
{{- end -}}
{{- join "," $ids -}}
{{- end -}}

{{/* One edge's public host: edgeHost with {id} replaced. Takes (dict "root" $ "id" ID). */}}
{{- define "natter.edgeHost" -}}
{{- .root.Values.public.edgeHost | replace "{id}" (toString .id) -}}
{{- end -}}

{{/*
Refuses to render when Snowflake worker ids could repeat: each id-making StatefulSet's range
[workerIdStart, workerIdStart + replicas) must lie in 0-1023 and overlap no other.
*/}}
{{- define "natter.checkWorkerIds" -}}
{{- $ranges := list (dict "name" "auth" "start" (int .Values.auth.workerIdStart) "end" (add .Values.auth.workerIdStart .Values.auth.replicas)) -}}
{{- $ranges = append $ranges (dict "name" "edge" "start" (int .Values.edge.workerIdStart) "end" (add .Values.edge.workerIdStart .Values.edge.replicas)) -}}
{{- if .Values.media.enabled -}}
{{- $ranges = append $ranges (dict "name" "media" "start" (int .Values.media.workerIdStart) "end" (add .Values.media.workerIdStart .Values.media.replicas)) -}}
{{- end -}}
{{- range $a := $ranges -}}
{{- if or (lt (int $a.start) 0) (gt (int $a.end) 1024) -}}
{{- fail (printf "%s: worker ids %d-%d fall outside 0-1023 (workerIdStart and replicas)" $a.name $a.start (sub $a.end 1)) -}}
{{- end -}}
{{- range $b := $ranges -}}
{{- if and (ne $a.name $b.name) (lt (int $a.start) (int $b.end)) (lt (int $b.start) (int $a.end)) -}}
{{- fail (printf "worker ids of %s (%d-%d) and %s (%d-%d) overlap: give them workerIdStart values whose ranges are apart" $a.name $a.start (sub $a.end 1) $b.name $b.start (sub $b.end 1)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A URL the engines section gives as a plain value or from a Secret. Takes (dict "env" NAME "engine" VALUES). */}}
{{- define "natter.engineUrlEnv" -}}
- name: {{ .env }}
{{- if .engine.urlSecret.name }}
  valueFrom:
    secretKeyRef: {name: {{ .engine.urlSecret.name | quote }}, key: {{ .engine.urlSecret.key | quote }}}
{{- else }}
  value: {{ required (printf "%s: set the engine's url or urlSecret" .env) .engine.url | quote }}
{{- end }}
{{- end -}}

{{- define "natter.cqlNodesEnv" -}}
- name: NATTER_CQL_NODES
  value: {{ required "engines.cql.nodes: name the ScyllaDB contact points" (join "," .Values.engines.cql.nodes) | quote }}
{{- end -}}

{{- define "natter.workerIdEnv" -}}
# The pod's ordinal, which its StatefulSet starts at workerIdStart: unique while it runs.
- name: NATTER_WORKER_ID
  valueFrom:
    fieldRef: {fieldPath: "metadata.labels['apps.kubernetes.io/pod-index']"}
{{- end -}}

{{/*
The service's config map over common.config (and chat.config for the services on the chat stream and
the CQL store; only its NATTER_STREAM_ settings with "streamOnly", for media), as env entries. A name
the chart sets itself is refused, so nothing is set twice with a surprising winner. Takes
(dict "root" $ "config" MAP "owned" LIST "chat" BOOL "streamOnly" BOOL).
*/}}
{{- define "natter.configEnv" -}}
{{- $merged := merge (deepCopy (.config | default dict)) (deepCopy .root.Values.common.config) -}}
{{- if .chat -}}
{{- $chat := deepCopy .root.Values.chat.config -}}
{{- if .streamOnly -}}
{{- range $name := keys $chat }}
{{- if not (hasPrefix "NATTER_STREAM_" $name) }}
{{- $_ := unset $chat $name }}
{{- end }}
{{- end }}
{{- end -}}
{{- $merged = merge $merged $chat -}}
{{- end -}}
{{- range $name := keys $merged | sortAlpha }}
{{- if has $name $.owned }}
{{- fail (printf "%s is set by the chart (from the values it documents), not through config" $name) }}
{{- end }}
{{- if not (hasPrefix "NATTER_" $name) }}
{{- fail (printf "config: %s is not a Natter setting (they all begin with NATTER_)" $name) }}
{{- end }}
{{- $value := get $merged $name }}
- name: {{ $name }}
  value: {{ if kindIs "float64" $value }}{{ $value | int64 | toString | quote }}{{ else }}{{ $value | toString | quote }}{{ end }}
{{- end }}
{{- end -}}

{{/* Probes on the public port: /livez (the process is up) and /readyz (its dependencies answer within 2 s). */}}
{{- define "natter.probes" -}}
# Covers start-up, which may wait for an engine (the CQL store: up to NATTER_CQL_CONNECT_TIMEOUT).
startupProbe:
  httpGet: {path: /livez, port: http}
  periodSeconds: 2
  failureThreshold: 60
livenessProbe:
  httpGet: {path: /livez, port: http}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet: {path: /readyz, port: http}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- end -}}

{{- define "natter.ports" -}}
ports:
  - {name: http, containerPort: {{ .port }}, protocol: TCP}
  - {name: metrics, containerPort: {{ .metricsPort }}, protocol: TCP}
{{- end -}}

{{- define "natter.listenEnv" -}}
- name: {{ printf "NATTER_%s_ADDR" .prefix }}
  value: {{ printf "0.0.0.0:%v" .svc.port | quote }}
- name: {{ printf "NATTER_%s_METRICS_ADDR" .prefix }}
  value: {{ printf "0.0.0.0:%v" .svc.metricsPort | quote }}
{{- end -}}

{{/* Pod annotations: prometheus.io scrape hints for /metrics on its own port, and the service's own. */}}
{{- define "natter.podAnnotations" -}}
{{- $a := deepCopy (.svc.podAnnotations | default dict) -}}
{{- if .root.Values.metrics.annotations -}}
{{- $_ := set $a "prometheus.io/scrape" "true" -}}
{{- $_ := set $a "prometheus.io/port" (toString .svc.metricsPort) -}}
{{- $_ := set $a "prometheus.io/path" "/metrics" -}}
{{- end -}}
{{- toYaml $a -}}
{{- end -}}

{{/* What every pod shares: security, scheduling and a writable /tmp. Takes (dict "root" $ "component" NAME "svc" VALUES). */}}
{{- define "natter.podCommon" -}}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
# No Docker-style service variables: for a Service named natter-auth they would be NATTER_AUTH_*,
# the very prefix the services read their settings from.
enableServiceLinks: false
{{- with .svc.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .svc.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .svc.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if .root.Values.topologySpread }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "natter.selectorLabels" . | nindent 8 }}
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "natter.selectorLabels" . | nindent 8 }}
{{- end }}
{{- end -}}

{{- define "natter.containerCommon" -}}
image: {{ include "natter.image" .root | quote }}
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
command: [{{ printf "%s/%s" .root.Values.image.binDir .component | quote }}]
securityContext:
  {{- toYaml .root.Values.securityContext | nindent 2 }}
resources:
  {{- toYaml .svc.resources | nindent 2 }}
{{ include "natter.ports" .svc }}
{{ include "natter.probes" . }}
{{- end -}}

{{/* The Service every component has (its pods, both ports), and its disruption budget. */}}
{{- define "natter.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "natter.fullname" .root }}-{{ .component }}
  labels:
    {{- include "natter.labels" . | nindent 4 }}
    # The one Service per component a ServiceMonitor scrapes (edges also have one per pod).
    natter/metrics: "true"
spec:
  selector:
    {{- include "natter.selectorLabels" . | nindent 4 }}
  ports:
    - {name: http, port: {{ .svc.port }}, targetPort: http, protocol: TCP}
    - {name: metrics, port: {{ .svc.metricsPort }}, targetPort: metrics, protocol: TCP}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "natter.fullname" .root }}-{{ .component }}
  labels:
    {{- include "natter.labels" . | nindent 4 }}
spec:
  maxUnavailable: {{ .svc.pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "natter.selectorLabels" . | nindent 6 }}
{{- end -}}

{{- define "natter.ingressTls" -}}
{{- if and .root.Values.public.tls .root.Values.ingress.tlsSecretName }}
tls:
  - secretName: {{ .root.Values.ingress.tlsSecretName | quote }}
    hosts:
      {{- toYaml .hosts | nindent 6 }}
{{- end }}
{{- end -}}

{{/* Every edge's HTTP origin, comma separated, for auth's Content-Security-Policy. */}}
{{- define "natter.edgeOrigins" -}}
{{- $origins := list -}}
{{- range $i := until (int .Values.edge.replicas) -}}
{{- $origins = append $origins (printf "%s://%s" (include "natter.httpScheme" $) (include "natter.edgeHost" (dict "root" $ "id" (add $.Values.edge.workerIdStart $i)))) -}}
{{- end -}}
{{- join "," $origins -}}
{{- end -}}
