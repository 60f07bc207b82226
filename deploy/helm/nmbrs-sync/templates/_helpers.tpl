{{/* Names and labels. */}}
{{- define "nmbrs-sync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "nmbrs-sync.fullname" -}}
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

{{- define "nmbrs-sync.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "nmbrs-sync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: nmbrs-sync
{{- end }}

{{/* Selector labels of one component: include "nmbrs-sync.selectorLabels" (list . "worker") */}}
{{- define "nmbrs-sync.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "nmbrs-sync.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "nmbrs-sync.componentLabels" -}}
{{ include "nmbrs-sync.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "nmbrs-sync.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "nmbrs-sync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "nmbrs-sync.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "nmbrs-sync.secretName" -}}
{{- default (printf "%s-secrets" (include "nmbrs-sync.fullname" .)) .Values.secrets.existingSecret }}
{{- end }}

{{/* Topic settings (Settings.topics) and their names after the prefix: TOPICS__<SETTING> = <prefix>.<name>. */}}
{{- define "nmbrs-sync.topicNames" -}}
sync_requests: sync-requests
employee_changes: employee-changes
company_changes: company-changes
reference_changes: reference-changes
plan: plan
decisions_needed: decisions-needed
decisions: decisions
followup_commands: followup-commands
outcomes: outcomes
status: status
dead_letter: dead-letter
{{- end }}

{{/*
The secret files of one component, as a map of Secret key -> the setting it holds (env name without _FILE):
include "nmbrs-sync.secretFiles" (list . "worker"). Only the keys that apply: a projected Secret item is
required, so a key mounted without need, and missing from an existing Secret, would keep the pod in
ContainerCreating. The chart-made Secret holds the keys given a value; an existing Secret the keys named in
secrets.keys. The DSN in the Secret (keys.databaseUrl) carries its password: no databasePassword then. The
SASL password only with SASL_*. The Nmbrs token only for the worker (the web app never calls Nmbrs); the
BSN hash key for both (see the web Deployment).
*/}}
{{- define "nmbrs-sync.secretFiles" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $s := $root.Values.secrets -}}
{{- $dsnInSecret := and (ne $s.keys.databaseUrl "") (ne $s.existingSecret "") -}}
{{- $applies := dict
  "databaseUrl" $dsnInSecret
  "databasePassword" (not $dsnInSecret)
  "nmbrsToken" (eq $component "worker")
  "nmbrsBsnHashKey" true
  "kafkaSaslPassword" (hasPrefix "SASL_" $root.Values.kafka.securityProtocol)
-}}
{{- $files := dict -}}
{{- range $field, $setting := dict "databaseUrl" "DATABASE_URL" "databasePassword" "DATABASE_PASSWORD" "nmbrsToken" "NMBRS_TOKEN" "nmbrsBsnHashKey" "NMBRS_BSN_HASH_KEY" "kafkaSaslPassword" "KAFKA_SASL_PASSWORD" }}
{{- $key := index $s.keys $field -}}
{{- $given := ternary true (ne (index $s $field | default "") "") (ne $s.existingSecret "") -}}
{{- if and $key $given (index $applies $field) -}}
{{- $_ := set $files $key $setting -}}
{{- end -}}
{{- end -}}
{{- toYaml $files }}
{{- end }}

{{/* The Kafka TLS Secret's name when it applies (SSL or SASL_SSL; PLAINTEXT reads no certificate), else "". */}}
{{- define "nmbrs-sync.kafkaTlsSecret" -}}
{{- if hasSuffix "SSL" .Values.kafka.securityProtocol }}
{{- .Values.kafka.tls.existingSecret }}
{{- end }}
{{- end }}

{{/* The non-secret settings, as environment variable -> value; null values are left out (the app's default). */}}
{{- define "nmbrs-sync.settings" -}}
{{- $v := .Values -}}
{{- $k := $v.kafka -}}
{{- $settings := dict
  "KAFKA_BOOTSTRAP_SERVERS" $k.bootstrapServers
  "KAFKA_SECURITY_PROTOCOL" $k.securityProtocol
  "KAFKA_SASL_MECHANISM" $k.sasl.mechanism
  "KAFKA_SASL_USERNAME" $k.sasl.username
  "KAFKA_APP_ID" $k.appId
  "KAFKA_TOPIC_PARTITIONS" $k.topicPartitions
  "KAFKA_REPLICATION_FACTOR" $k.replicationFactor
  "KAFKA_MIN_INSYNC_REPLICAS" $k.minInsyncReplicas
  "KAFKA_DEAD_LETTER_RETENTION_DAYS" $k.deadLetterRetentionDays
  "TOPICS_ENSURE" $k.topics.ensure
  "DATABASE_POOL_MAX" $v.database.poolMax
  "NMBRS_BASE_URL" $v.nmbrs.baseUrl
  "NMBRS_USERNAME" $v.nmbrs.username
  "NMBRS_DOMAIN" $v.nmbrs.domain
  "NMBRS_READ_BSN" $v.nmbrs.readBsn
  "NMBRS_RATE_LIMIT_PER_S" $v.nmbrs.rateLimitPerS
  "NMBRS_MAX_CONCURRENCY" $v.nmbrs.maxConcurrency
  "NMBRS_TIMEOUT_S" $v.nmbrs.timeoutS
  "NMBRS_MAX_RETRIES" $v.nmbrs.maxRetries
  "POLL_ENABLED" $v.poll.enabled
  "POLL_INTERVAL_S" $v.poll.intervalS
  "FULL_RECONCILIATION_INTERVAL_S" $v.poll.fullReconciliationIntervalS
  "BREAKER_MAX_SHARE" $v.poll.breakerMaxShare
  "AUTO_LINK_MIN_SCORE" $v.reconcile.autoLinkMinScore
  "RECONCILE_BATCH_MAX" $v.reconcile.batchMax
  "RECONCILE_BATCH_WAIT_S" $v.reconcile.batchWaitS
  "LOG_LEVEL" $v.logLevel
  "LOG_FORMAT" $v.logFormat
  "HR_WEB_AUTH" $v.web.auth
  "HR_WEB_USER_HEADER" $v.web.userHeader
  "HR_WEB_EMAIL_HEADER" $v.web.emailHeader
  "HR_WEB_SECURE_COOKIES" $v.web.secureCookies
  "HR_WEB_SESSION_HOURS" $v.web.sessionHours
-}}
{{- if $v.web.trustedProxies }}
{{- $_ := set $settings "HR_WEB_TRUSTED_PROXIES" (toJson $v.web.trustedProxies) }}
{{- end }}
{{- /* Worker and web app read the database alike: the worker's files say whether the DSN is a secret. */}}
{{- if not (has "DATABASE_URL" (include "nmbrs-sync.secretFiles" (list . "worker") | fromYaml | values)) }}
{{- $_ := set $settings "DATABASE_URL" $v.database.url }}
{{- end }}
{{- $overrides := $k.topics.overrides | default dict }}
{{- range $setting, $name := include "nmbrs-sync.topicNames" . | fromYaml }}
{{- $_ := set $settings (printf "TOPICS__%s" (upper $setting)) (index $overrides $setting | default (printf "%s.%s" $k.topics.prefix $name)) }}
{{- end }}
{{- range $name, $value := $settings }}
{{- if not (kindIs "invalid" $value) }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Environment of a component's container besides the ConfigMap: where its secret files are.
include "nmbrs-sync.fileEnv" (list . "worker")
*/}}
{{- define "nmbrs-sync.fileEnv" -}}
{{- $root := index . 0 -}}
{{- range $key, $setting := include "nmbrs-sync.secretFiles" . | fromYaml }}
- name: {{ $setting }}_FILE
  value: /etc/nmbrs-sync/secrets/{{ $key }}
{{- end }}
{{- if include "nmbrs-sync.kafkaTlsSecret" $root }}
{{- with $root.Values.kafka.tls }}
{{- if .caKey }}
- name: KAFKA_SSL_CAFILE
  value: /etc/nmbrs-sync/secrets/kafka-ca.crt
{{- end }}
{{- if .certKey }}
- name: KAFKA_SSL_CERTFILE
  value: /etc/nmbrs-sync/secrets/kafka-client.crt
- name: KAFKA_SSL_KEYFILE
  value: /etc/nmbrs-sync/secrets/kafka-client.key
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* A component's secret files: its keys of the application's Secret and the Kafka TLS Secret, in one directory. */}}
{{- define "nmbrs-sync.secretsVolume" -}}
{{- $root := index . 0 }}
{{- $files := include "nmbrs-sync.secretFiles" . | fromYaml }}
{{- $tlsSecret := include "nmbrs-sync.kafkaTlsSecret" $root }}
{{- $tls := $root.Values.kafka.tls }}
{{- if or $files $tlsSecret }}
- name: secrets
  projected:
    defaultMode: 288  # 0440: the owner (root) and the group fsGroup read
    sources:
    {{- if $files }}
      - secret:
          name: {{ include "nmbrs-sync.secretName" $root }}
          items:
          {{- range $key, $_ := $files }}
            - key: {{ $key }}
              path: {{ $key }}
          {{- end }}
    {{- end }}
    {{- if $tlsSecret }}
      - secret:
          name: {{ $tlsSecret }}
          items:
          {{- if $tls.caKey }}
            - key: {{ $tls.caKey }}
              path: kafka-ca.crt
          {{- end }}
          {{- if $tls.certKey }}
            - key: {{ $tls.certKey }}
              path: kafka-client.crt
            - key: {{ $tls.keyKey }}
              path: kafka-client.key
          {{- end }}
    {{- end }}
{{- end }}
{{- end }}

{{- define "nmbrs-sync.secretsMount" -}}
{{- if or (include "nmbrs-sync.secretFiles" . | fromYaml) (include "nmbrs-sync.kafkaTlsSecret" (index . 0)) }}
- name: secrets
  mountPath: /etc/nmbrs-sync/secrets
  readOnly: true
{{- end }}
{{- end }}

{{/*
Volumes of a pod: include "nmbrs-sync.volumes" (list . component sizeLimit). The root filesystem is read-only:
/var/lib/nmbrs-sync is HOME, its tmp/ is TMPDIR (faust's data directory); tmp/ is a volume of its own
because an emptyDir starts empty, without the image's tmp/ directory.
*/}}
{{- define "nmbrs-sync.volumes" -}}
{{- $root := index . 0 }}
- name: home
  emptyDir:
    sizeLimit: 64Mi
- name: tmp
  emptyDir:
    sizeLimit: {{ index . 2 }}
{{- include "nmbrs-sync.secretsVolume" (list $root (index . 1)) }}
{{- with $root.Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* include "nmbrs-sync.volumeMounts" (list . component) */}}
{{- define "nmbrs-sync.volumeMounts" -}}
{{- $root := index . 0 }}
- name: home
  mountPath: /var/lib/nmbrs-sync
- name: tmp
  mountPath: /var/lib/nmbrs-sync/tmp
{{- include "nmbrs-sync.secretsMount" . }}
{{- with $root.Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Render-time checks: a mistake here fails `helm install` instead of leaving pods that idle or crash. */}}
{{- define "nmbrs-sync.validate" -}}
{{- $k := .Values.kafka -}}
{{- if gt (int .Values.worker.replicas) (int $k.topicPartitions) }}
{{- fail (printf "worker.replicas (%d) > kafka.topicPartitions (%d): the extra workers would get no partition and sit idle; lower the replicas or raise the partitions" (int .Values.worker.replicas) (int $k.topicPartitions)) }}
{{- end }}
{{- if and $k.minInsyncReplicas (gt (int $k.minInsyncReplicas) (int $k.replicationFactor)) }}
{{- fail (printf "kafka.minInsyncReplicas (%d) > kafka.replicationFactor (%d): no write would ever be acknowledged" (int $k.minInsyncReplicas) (int $k.replicationFactor)) }}
{{- end }}
{{- if hasPrefix "SASL_" $k.securityProtocol }}
{{- if not (and $k.sasl.mechanism $k.sasl.username (has "KAFKA_SASL_PASSWORD" (include "nmbrs-sync.secretFiles" (list . "worker") | fromYaml | values))) }}
{{- fail (printf "kafka.securityProtocol %s needs kafka.sasl.mechanism, kafka.sasl.username and the password in secrets (kafkaSaslPassword)" $k.securityProtocol) }}
{{- end }}
{{- end }}
{{- if and $k.tls.certKey (not $k.tls.keyKey) }}
{{- fail "kafka.tls.certKey needs kafka.tls.keyKey (the client key of mutual TLS)" }}
{{- end }}
{{- if and .Values.migrations.job.enabled (not .Values.secrets.existingSecret) }}
{{- fail "migrations.job.enabled needs secrets.existingSecret: the hook Job runs before the chart's own Secret exists" }}
{{- end }}
{{- /* Proxy auth believes the user header of any peer in web.trustedProxies: without a NetworkPolicy every
pod of the cluster is such a peer and could sign in as anyone. */}}
{{- $w := .Values.web }}
{{- if and $w.enabled (eq ($w.auth | default "accounts") "proxy") (not .Values.networkPolicy.enabled) (not $w.acknowledgeProxyWithoutNetworkPolicy) }}
{{- fail "web.auth=proxy needs networkPolicy.enabled: otherwise any pod in the cluster can send the user header straight to the web Service and sign in as anyone. Enable it, or set web.acknowledgeProxyWithoutNetworkPolicy=true if something else (a mesh policy, your CNI's own policies) admits only the auth proxy" }}
{{- end }}
{{- if .Values.networkPolicy.enabled }}
{{- range $peer := list "ingressController" "prometheus" }}
{{- $p := index $.Values.networkPolicy $peer }}
{{- if not (or $p.namespaceSelector $p.podSelector) }}
{{- fail (printf "networkPolicy.%s needs a namespaceSelector or a podSelector with labels: without them it would admit every pod (or none)" $peer) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
