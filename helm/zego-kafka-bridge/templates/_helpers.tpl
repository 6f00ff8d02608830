{{/* Names and labels. */}}
{{- define "zkb.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "zkb.fullname" -}}
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

{{- define "zkb.selectorLabels" -}}
app.kubernetes.io/name: {{ include "zkb.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "zkb.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "zkb.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: zego-kafka-bridge
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* A resource's annotations: commonAnnotations, then its own (`extra`). Renders nothing when
both are empty. Call with (dict "root" $ "extra" <map>). */}}
{{- define "zkb.annotations" -}}
{{- $annotations := merge (deepCopy (default dict .extra)) (deepCopy (default dict .root.Values.commonAnnotations)) }}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "zkb.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "zkb.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "zkb.secretName" -}}
{{- default (include "zkb.fullname" .) .Values.existingSecret }}
{{- end }}

{{/* registry/repository:tag, or @digest when image.digest pins one (the tag is then left out).
global.imageRegistry, when set, replaces the registry part of image.repository. */}}
{{- define "zkb.image" -}}
{{- $repository := .Values.image.repository }}
{{- with (dig "imageRegistry" "" (.Values.global | default dict)) }}
{{- $parts := splitList "/" $repository }}
{{- if and (gt (len $parts) 1) (or (contains "." (first $parts)) (contains ":" (first $parts)) (eq (first $parts) "localhost")) }}
{{- $repository = join "/" (rest $parts) }}
{{- end }}
{{- $repository = printf "%s/%s" (trimSuffix "/" .) $repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "zkb.spooled" -}}
{{- if eq .Values.config.ackMode "spooled" }}true{{ end }}
{{- end }}

{{/* "true" when each pod keeps a volume of its own (a StatefulSet): always with ackMode
spooled (the spool), and with persistence.enabled (the dead letters survive the pod). */}}
{{- define "zkb.stateful" -}}
{{- if or (include "zkb.spooled" .) .Values.persistence.enabled }}true{{ end }}
{{- end }}

{{/* Settings that cannot work together are refused at install time, not discovered later. */}}
{{- define "zkb.validate" -}}
{{- if not .Values.kafka.brokers }}
{{- fail "kafka.brokers is required: the bootstrap servers of the cluster to publish to (host:port,...)" }}
{{- end }}
{{- if and (not .Values.existingSecret) (not .Values.callbackSecrets) }}
{{- fail "callbackSecrets is required (the callback secret from the ZEGOCLOUD console, SECRET or APPID=SECRET, comma-separated), or name a Secret of your own in existingSecret" }}
{{- end }}
{{- if and (include "zkb.stateful" .) (gt (len (include "zkb.fullname" .)) 52) }}
{{- fail (printf "the name %q is %d characters long: a StatefulSet's pods carry a label of its name plus 11 characters, which Kubernetes limits to 63, so no pod would be created. Shorten the release name or set fullnameOverride (at most 52 characters), or persistence.enabled=false." (include "zkb.fullname" .) (len (include "zkb.fullname" .))) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (not .Values.autoscaling.targetCPUUtilizationPercentage) (not .Values.autoscaling.targetMemoryUtilizationPercentage) (not .Values.autoscaling.metrics) }}
{{- fail "autoscaling.enabled with no metric: set autoscaling.targetCPUUtilizationPercentage, targetMemoryUtilizationPercentage or metrics (an HPA without one scales on 80 % CPU, which nobody asked for)" }}
{{- end }}
{{- if and .Values.service.externalTrafficPolicy (not (has .Values.service.type (list "NodePort" "LoadBalancer"))) }}
{{- fail (printf "service.externalTrafficPolicy is for a NodePort or LoadBalancer Service; service.type is %s" .Values.service.type) }}
{{- end }}
{{- if and .Values.persistence.existingClaim (not (include "zkb.stateful" .)) }}
{{- fail "persistence.existingClaim needs persistence.enabled=true (or ackMode spooled): without persistence the dead letters are on an emptyDir and the claim would be ignored" }}
{{- end }}
{{- $alerts := list }}
{{- range (.Files.Get "files/alerts.yml" | fromYaml).groups }}{{ range .rules }}{{ $alerts = append $alerts .alert }}{{ end }}{{ end }}
{{- range $name := concat (keys (.Values.prometheusRule.severities | default dict)) (keys (.Values.prometheusRule.overrides | default dict)) (.Values.prometheusRule.disabledAlerts | default list) }}
{{- if not (has $name $alerts) }}
{{- fail (printf "prometheusRule names an alert the chart does not have: %s (the alerts are those of deploy/prometheus/alerts.yml)" $name) }}
{{- end }}
{{- end }}
{{- if and (include "zkb.stateful" .) .Values.persistence.existingClaim (gt (int .Values.replicaCount) 1) }}
{{- fail "persistence.existingClaim gives every pod the same volume: each pod's dead-letter file and spool must be its own, so it needs replicaCount=1 (claims per pod come from persistence.storageClassName)" }}
{{- end }}
{{- if and (include "zkb.stateful" .) .Values.autoscaling.enabled }}
{{- fail "autoscaling.enabled cannot be used with config.ackMode=spooled or persistence.enabled: scaling in would leave undelivered events on the volume of a removed pod. Size replicaCount by hand." }}
{{- end }}
{{- if and .Values.terminationGracePeriodSeconds (lt (int .Values.terminationGracePeriodSeconds) (int (include "zkb.minGracePeriod" .))) }}
{{- fail (printf "terminationGracePeriodSeconds=%d is shorter than preStopSleepSeconds + config.shutdownTimeoutMs + config.shutdownReportWaitMs + 5 s for the exit itself (%ss): Kubernetes would kill the bridge before it flushed. Raise it or leave it at 0 to derive it." (int .Values.terminationGracePeriodSeconds) (include "zkb.minGracePeriod" .)) }}
{{- end }}
{{- range $key, $value := .Values.kafka.librdkafka }}
{{- if has $key (list "bootstrap.servers" "metadata.broker.list" "sasl.username" "sasl.password" "ssl.ca.location") }}
{{- fail (printf "kafka.librdkafka.%s: set it through the chart's own value (kafka.brokers, kafka.sasl, kafka.tls.caSecret)" $key) }}
{{- end }}
{{- end }}
{{- end }}

{{- define "zkb.minGracePeriod" -}}
{{- add (include "zkb.preStopSeconds" . | int) (div (add (int .Values.config.shutdownTimeoutMs) (include "zkb.shutdownReportWaitMs" . | int) 999) 1000) 5 }}
{{- end }}

{{/* The preStop sleep: lifecycle's when it sets one, else preStopSleepSeconds. */}}
{{- define "zkb.preStopSeconds" -}}
{{- if .Values.lifecycle }}
{{- dig "preStop" "sleep" "seconds" 0 .Values.lifecycle | int }}
{{- else }}
{{- .Values.preStopSleepSeconds | int }}
{{- end }}
{{- end }}

{{/* With a default here too: `helm upgrade --reuse-values` from a chart without the value
keeps the old values, which lack it. */}}
{{- define "zkb.shutdownReportWaitMs" -}}
{{- dig "shutdownReportWaitMs" 35000 .Values.config | int }}
{{- end }}

{{- define "zkb.gracePeriod" -}}
{{- if .Values.terminationGracePeriodSeconds }}
{{- .Values.terminationGracePeriodSeconds }}
{{- else }}
{{- add (int (include "zkb.minGracePeriod" .)) 5 }}
{{- end }}
{{- end }}

{{/* Kafka client environment shared by the bridge and the topics Job. */}}
{{- define "zkb.kafkaEnv" -}}
- name: ZEGO_BRIDGE_KAFKA_BROKERS
  value: {{ .Values.kafka.brokers | quote }}
- name: ZEGO_BRIDGE_TOPIC_PREFIX
  value: {{ .Values.kafka.topicPrefix | quote }}
- name: ZEGO_BRIDGE_PRODUCTS
  value: {{ .Values.config.products | quote }}
{{- range $type, $topic := .Values.kafka.topics }}
- name: {{ printf "ZEGO_BRIDGE_TOPIC_%s" ($type | replace "." "_" | upper) }}
  value: {{ $topic | quote }}
{{- end }}
{{- range $property, $value := .Values.kafka.librdkafka }}
- name: {{ printf "ZEGO_BRIDGE_LIBRDKAFKA_%s" ($property | replace "." "_" | upper) }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- if or .Values.existingSecret .Values.kafka.sasl.username }}
- name: ZEGO_BRIDGE_LIBRDKAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ include "zkb.secretName" . }}
      key: {{ include "zkb.secretKey" (list . "saslUsername") }}
      optional: true
{{- if include "zkb.saslPasswordFile" . }}
# From the Secret's volume rather than the environment (read at start).
- name: ZEGO_BRIDGE_KAFKA_SASL_PASSWORD_FILE
  value: /etc/zego-kafka-bridge/secrets/sasl-password
{{- else }}
- name: ZEGO_BRIDGE_LIBRDKAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "zkb.secretName" . }}
      key: {{ include "zkb.secretKey" (list . "saslPassword") }}
      optional: true
{{- end }}
{{- end }}
{{- if .Values.kafka.tls.caSecret }}
- name: ZEGO_BRIDGE_LIBRDKAFKA_SSL_CA_LOCATION
  value: /etc/zego-kafka-bridge/kafka-ca/ca.crt
{{- end }}
{{- end }}

{{/* "true" when the chart's own Secret holds the SASL password, so the key surely exists and
can be mounted as a file (a key missing from an existingSecret would stop the pod). */}}
{{- define "zkb.saslPasswordFile" -}}
{{- if and (not .Values.existingSecret) .Values.kafka.sasl.password }}true{{ end }}
{{- end }}

{{/* "true" when the chart's own Secret holds the schema registry's password: mounted as a
file, like the SASL password. */}}
{{- define "zkb.registryPasswordFile" -}}
{{- if and (not .Values.existingSecret) .Values.schemaRegistry.password }}true{{ end }}
{{- end }}

{{- define "zkb.kafkaVolumeMounts" -}}
{{- if .Values.kafka.tls.caSecret }}
- name: kafka-ca
  mountPath: /etc/zego-kafka-bridge/kafka-ca
  readOnly: true
{{- end }}
{{- end }}

{{- define "zkb.kafkaVolumes" -}}
{{- if .Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.tls.caSecret }}
{{- end }}
{{- end }}

{{/* The pod of the Deployment and of the StatefulSet. */}}
{{- define "zkb.podTemplate" -}}
metadata:
  labels:
    {{- include "zkb.labels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # Roll the pods when the callback secrets change.
    checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "zkb.serviceAccountName" . }}
  automountServiceAccountToken: false
  # Kubernetes would put every Service of the namespace in the environment, the bridge's own
  # named ZEGO_BRIDGE_ZEGO_KAFKA_BRIDGE_SERVICE_HOST and so on with the release name `zego-bridge`.
  enableServiceLinks: false
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  terminationGracePeriodSeconds: {{ include "zkb.gracePeriod" . }}
  {{- with .Values.initContainers }}
  initContainers:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: bridge
      image: {{ include "zkb.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      {{- with .Values.command }}
      command:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      args:
        {{- toYaml (.Values.args | default (list "serve")) | nindent 8 }}
      ports:
        - name: http
          containerPort: {{ .Values.ports.public }}
          protocol: TCP
        - name: admin
          containerPort: {{ .Values.ports.admin }}
          protocol: TCP
      env:
        - name: ZEGO_BRIDGE_LISTEN_ADDR
          value: {{ printf "0.0.0.0:%d" (int .Values.ports.public) | quote }}
        - name: ZEGO_BRIDGE_ADMIN_ADDR
          value: {{ printf "0.0.0.0:%d" (int .Values.ports.admin) | quote }}
        # From the Secret's volume, read again when the Secret changes: a rotation needs no
        # restart (an environment variable would keep the old value until one).
        - name: ZEGO_BRIDGE_CALLBACK_SECRETS_FILE
          value: /etc/zego-kafka-bridge/secrets/callback-secrets
        {{- include "zkb.kafkaEnv" . | nindent 8 }}
        - name: ZEGO_BRIDGE_ACK_MODE
          value: {{ .Values.config.ackMode | quote }}
        - name: ZEGO_BRIDGE_MAX_CLOCK_SKEW_SECS
          value: {{ .Values.config.maxClockSkewSecs | quote }}
        - name: ZEGO_BRIDGE_ZIM_BEFORE_SEND_VERDICT
          value: {{ .Values.config.zimBeforeSendVerdict | quote }}
        - name: ZEGO_BRIDGE_MAX_BODY_BYTES
          value: {{ .Values.config.maxBodyBytes | int64 | quote }}
        {{- if eq .Values.config.ackMode "delivered" }}
        - name: ZEGO_BRIDGE_DELIVERY_TIMEOUT_MS
          value: {{ .Values.config.deliveryTimeoutMs | quote }}
        {{- end }}
        - name: ZEGO_BRIDGE_UNAVAILABLE_AFTER_MS
          value: {{ .Values.config.unavailableAfterMs | quote }}
        - name: ZEGO_BRIDGE_DEDUP_CAPACITY
          value: {{ .Values.config.dedupCapacity | int64 | quote }}
        - name: ZEGO_BRIDGE_KAFKA_PROBE_INTERVAL_MS
          value: {{ .Values.config.kafkaProbeIntervalMs | quote }}
        - name: ZEGO_BRIDGE_SHUTDOWN_TIMEOUT_MS
          value: {{ .Values.config.shutdownTimeoutMs | quote }}
        - name: ZEGO_BRIDGE_SHUTDOWN_REPORT_WAIT_MS
          value: {{ include "zkb.shutdownReportWaitMs" . | quote }}
        - name: ZEGO_BRIDGE_RETRY_AFTER_SECS
          value: {{ .Values.config.retryAfterSecs | quote }}
        {{- $httpWorkers := include "zego-kafka-bridge.httpWorkers" . | int }}
        {{- if gt $httpWorkers 0 }}
        - name: ZEGO_BRIDGE_HTTP_WORKERS
          value: {{ $httpWorkers | quote }}
        {{- end }}
        - name: ZEGO_BRIDGE_HTTP_REQUEST_TIMEOUT_MS
          value: {{ .Values.config.httpRequestTimeoutMs | quote }}
        - name: ZEGO_BRIDGE_HTTP_KEEP_ALIVE_SECS
          value: {{ .Values.config.httpKeepAliveSecs | quote }}
        - name: ZEGO_BRIDGE_HTTP_MAX_CONNECTIONS
          value: {{ .Values.config.httpMaxConnections | quote }}
        - name: ZEGO_BRIDGE_HTTP_MAX_BUFFERED_BODY_BYTES
          value: {{ .Values.config.httpMaxBufferedBodyBytes | int64 | quote }}
        - name: ZEGO_BRIDGE_HTTP_MAX_BUFFERED_HEAD_BYTES
          value: {{ .Values.config.httpMaxBufferedHeadBytes | int64 | quote }}
        - name: ZEGO_BRIDGE_LOG_FORMAT
          value: {{ .Values.config.logFormat | quote }}
        - name: ZEGO_BRIDGE_LOG_LEVEL
          value: {{ .Values.config.logLevel | quote }}
        - name: ZEGO_BRIDGE_LOG_EVENTS
          value: {{ .Values.config.logEvents | quote }}
        - name: ZEGO_BRIDGE_ACCESS_LOG
          value: {{ .Values.config.accessLog | quote }}
        {{- with .Values.config.trustedProxies }}
        - name: ZEGO_BRIDGE_HTTP_TRUSTED_PROXIES
          value: {{ . | quote }}
        {{- end }}
        # The exit summary (events undelivered at the deadline, and where they went), shown
        # as the container's last termination message once the metrics port is gone.
        - name: ZEGO_BRIDGE_TERMINATION_MESSAGE_PATH
          value: /dev/termination-log
        - name: ZEGO_BRIDGE_DEAD_LETTER_PATH
          value: /data/dead-letter.jsonl
        - name: ZEGO_BRIDGE_DEAD_LETTER_RETRY_INTERVAL_MS
          value: {{ .Values.config.deadLetterRetryIntervalMs | quote }}
        {{- if include "zkb.spooled" . }}
        - name: ZEGO_BRIDGE_SPOOL_DIR
          value: /data/spool
        - name: ZEGO_BRIDGE_SPOOL_MAX_BYTES
          value: {{ .Values.config.spoolMaxBytes | int64 | quote }}
        - name: ZEGO_BRIDGE_SPOOL_LIVENESS_GRACE_MS
          value: {{ .Values.config.spoolLivenessGraceMs | quote }}
        {{- end }}
        {{- with .Values.schemaRegistry.url }}
        - name: ZEGO_BRIDGE_SCHEMA_REGISTRY_URL
          value: {{ . | quote }}
        {{- with $.Values.schemaRegistry.username }}
        - name: ZEGO_BRIDGE_SCHEMA_REGISTRY_USERNAME
          value: {{ . | quote }}
        {{- if include "zkb.registryPasswordFile" $ }}
        - name: ZEGO_BRIDGE_SCHEMA_REGISTRY_PASSWORD_FILE
          value: /etc/zego-kafka-bridge/secrets/schema-registry-password
        {{- else }}
        - name: ZEGO_BRIDGE_SCHEMA_REGISTRY_PASSWORD
          valueFrom:
            secretKeyRef:
              name: {{ include "zkb.secretName" $ }}
              key: {{ include "zkb.secretKey" (list $ "schemaRegistryPassword") }}
        {{- end }}
        {{- end }}
        {{- if $.Values.schemaRegistry.caSecret }}
        - name: ZEGO_BRIDGE_SCHEMA_REGISTRY_CA_FILE
          value: /etc/zego-kafka-bridge/registry-ca/ca.crt
        {{- end }}
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with .Values.envFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      startupProbe:
        {{- if (.Values.customProbes | default dict).startup }}
        {{- toYaml (.Values.customProbes | default dict).startup | nindent 8 }}
        {{- else }}
        httpGet:
          path: /healthz
          port: admin
        initialDelaySeconds: {{ .Values.probes.startup.initialDelaySeconds }}
        periodSeconds: {{ .Values.probes.startup.periodSeconds }}
        timeoutSeconds: {{ .Values.probes.startup.timeoutSeconds }}
        failureThreshold: {{ .Values.probes.startup.failureThreshold }}
        {{- end }}
      livenessProbe:
        {{- if (.Values.customProbes | default dict).liveness }}
        {{- toYaml (.Values.customProbes | default dict).liveness | nindent 8 }}
        {{- else }}
        httpGet:
          path: /healthz
          port: admin
        initialDelaySeconds: {{ .Values.probes.liveness.initialDelaySeconds }}
        periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
        timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
        failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
        {{- end }}
      readinessProbe:
        {{- if (.Values.customProbes | default dict).readiness }}
        {{- toYaml (.Values.customProbes | default dict).readiness | nindent 8 }}
        {{- else }}
        httpGet:
          path: /readyz
          port: admin
        initialDelaySeconds: {{ .Values.probes.readiness.initialDelaySeconds }}
        periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
        timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
        failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
        {{- end }}
      {{- if .Values.lifecycle }}
      lifecycle:
        {{- toYaml .Values.lifecycle | nindent 8 }}
      {{- else if gt (int .Values.preStopSleepSeconds) 0 }}
      # The sleep action needs Kubernetes 1.30 (the chart's kubeVersion); with 0 the hook is
      # left out, since a zero sleep would need 1.33.
      lifecycle:
        preStop:
          sleep:
            seconds: {{ .Values.preStopSleepSeconds }}
      {{- end }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      terminationMessagePath: /dev/termination-log
      terminationMessagePolicy: FallbackToLogsOnError
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: data
          mountPath: /data
        - name: tmp
          mountPath: /tmp
        # The whole directory, never a subPath: the kubelet updates a Secret volume by
        # swapping a symbolic link, which a subPath mount would never see.
        - name: callback-secrets
          mountPath: /etc/zego-kafka-bridge/secrets
          readOnly: true
        {{- include "zkb.kafkaVolumeMounts" . | nindent 8 }}
        {{- if and .Values.schemaRegistry.url .Values.schemaRegistry.caSecret }}
        - name: registry-ca
          mountPath: /etc/zego-kafka-bridge/registry-ca
          readOnly: true
        {{- end }}
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    {{- with .Values.extraContainers }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  volumes:
    {{- if not (include "zkb.stateful" .) }}
    # Holds the dead-letter file, which the bridge sends again once Kafka is back; it goes
    # with the pod (persistence.enabled keeps it on a volume of the pod's own).
    - name: data
      emptyDir: {}
    {{- else if .Values.persistence.existingClaim }}
    - name: data
      persistentVolumeClaim:
        claimName: {{ .Values.persistence.existingClaim }}
    {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: 16Mi
    - name: callback-secrets
      secret:
        secretName: {{ include "zkb.secretName" . }}
        items:
          - key: {{ include "zkb.secretKey" (list . "callbackSecrets") }}
            path: callback-secrets
          {{- if include "zkb.saslPasswordFile" . }}
          - key: {{ include "zkb.secretKey" (list . "saslPassword") }}
            path: sasl-password
          {{- end }}
          {{- if include "zkb.registryPasswordFile" . }}
          - key: {{ include "zkb.secretKey" (list . "schemaRegistryPassword") }}
            path: schema-registry-password
          {{- end }}
        # Readable by the bridge's group (fsGroup) only.
        defaultMode: 0440
    {{- include "zkb.kafkaVolumes" . | nindent 4 }}
    {{- if and .Values.schemaRegistry.url .Values.schemaRegistry.caSecret }}
    - name: registry-ca
      secret:
        secretName: {{ .Values.schemaRegistry.caSecret }}
    {{- end }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- tpl (toYaml .Values.topologySpreadConstraints) . | nindent 4 }}
  {{- else if .Values.topologySpread.enabled }}
  topologySpreadConstraints:
    {{- range .Values.topologySpread.topologyKeys }}
    - maxSkew: {{ $.Values.topologySpread.maxSkew }}
      topologyKey: {{ . }}
      whenUnsatisfiable: {{ $.Values.topologySpread.whenUnsatisfiable }}
      labelSelector:
        matchLabels:
          {{- include "zkb.selectorLabels" $ | nindent 10 }}
    {{- end }}
  {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/*
HTTP workers: config.httpWorkers, else the pod's CPU request rounded up (a pod asking for 250m on
a 32-core node should not run 32 workers: the process sees the node's CPUs when there is no CPU
limit), else 0 (unset: one per CPU the process sees).
*/}}
{{- define "zego-kafka-bridge.httpWorkers" -}}
{{- $workers := int .Values.config.httpWorkers -}}
{{- if eq $workers 0 -}}
{{- $cpu := dig "requests" "cpu" "" (.Values.resources | default dict) | toString -}}
{{- if hasSuffix "m" $cpu -}}
{{- $workers = div (add (trimSuffix "m" $cpu | atoi) 999) 1000 | int -}}
{{- else if $cpu -}}
{{- $workers = ceil ($cpu | float64) | int -}}
{{- end -}}
{{- if and $cpu (lt $workers 1) -}}
{{- $workers = 1 -}}
{{- end -}}
{{- end -}}
{{- $workers -}}
{{- end -}}

{{/* The topics Job's name: 45 characters of the full name, "-topics-", a digest of the values. */}}
{{- define "zkb.topicsJobName" -}}
{{- $digest := printf "%s %s" .Chart.Version (toJson .Values) | sha256sum | trunc 10 }}
{{- printf "%s-topics-%s" (include "zkb.fullname" . | trunc 45 | trimSuffix "-") $digest }}
{{- end }}

{{/* The key of a value in the Secret: the chart's own names, or existingSecretKeys' in
existingSecret. (list $ "callbackSecrets") */}}
{{- define "zkb.secretKey" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- $defaults := dict "callbackSecrets" "callback-secrets" "saslUsername" "sasl-username" "saslPassword" "sasl-password" "schemaRegistryPassword" "schema-registry-password" }}
{{- if $root.Values.existingSecret }}
{{- dig $name (get $defaults $name) ($root.Values.existingSecretKeys | default dict) }}
{{- else }}
{{- get $defaults $name }}
{{- end }}
{{- end }}
