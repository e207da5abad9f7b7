{{/*
Everything one service needs: ServiceAccount, Deployment, Service, and when
it scales PodDisruptionBudget and HorizontalPodAutoscaler.
Called once per entry of .Values.services from services.yaml with
(dict "root" $ "name" "play" "svc" .Values.services.play).
*/}}
{{- define "video-mesh.serviceResources" -}}
{{- $root := .root }}
{{- $name := .name }}
{{- $svc := .svc }}
{{- $topology := fromYaml (include "video-mesh.topology" $root) }}
{{- $topo := required (printf "unknown service %q" $name) (get $topology $name) }}
{{- $postgresCa := and $topo.database (include "video-mesh.postgresRoles" $root) $root.Values.postgres.external.roles.caSecret }}
{{- $natsCa := and $topo.nats (include "video-mesh.natsCa" $root) }}
{{- $ctx := dict "root" $root "component" $name }}
{{- $fullName := include "video-mesh.componentName" $ctx }}
{{- $consulAddr := include "video-mesh.servicesConsulAddr" $root }}
{{- $scales := or (gt (int $svc.replicas) 1) $svc.autoscaling.enabled }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $fullName }}
  labels:
    {{- include "video-mesh.labels" $ctx | nindent 4 }}
# The services never call the Kubernetes API.
automountServiceAccountToken: false
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $fullName }}
  labels:
    {{- include "video-mesh.labels" $ctx | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "video-mesh.selectorLabels" $ctx | nindent 4 }}
  ports:
    - name: http
      port: {{ $svc.port }}
      targetPort: http
      protocol: TCP
    {{- if $root.Values.mesh.enabled }}
    # The merged metrics the ServiceMonitor scrapes in mesh mode.
    - name: metrics
      port: {{ include "video-mesh.meshMetricsPort" $root }}
      targetPort: {{ include "video-mesh.meshMetricsPort" $root }}
      protocol: TCP
    {{- end }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $fullName }}
  labels:
    {{- include "video-mesh.labels" $ctx | nindent 4 }}
spec:
  {{- with include "video-mesh.replicas" (dict "svc" $svc "live" (lookup "apps/v1" "Deployment" $root.Release.Namespace $fullName)) }}
  replicas: {{ . }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "video-mesh.selectorLabels" $ctx | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  template:
    metadata:
      labels:
        {{- include "video-mesh.labels" $ctx | nindent 8 }}
      {{- $checksum := include "video-mesh.secretsChecksum" (dict "root" $root "topo" $topo "name" $name) }}
      {{- if or $checksum $root.Values.podAnnotations $root.Values.mesh.enabled }}
      annotations:
        {{- with $checksum }}
        # A new value in a Secret the chart generates rolls the pods that read it.
        checksum/secrets: {{ . }}
        {{- end }}
        {{- with $root.Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- if $root.Values.mesh.enabled }}
        {{- include "video-mesh.meshPodAnnotations" (dict "root" $root "name" $name "svc" $svc "topo" $topo) | nindent 8 }}
        {{- end }}
      {{- end }}
    spec:
      serviceAccountName: {{ $fullName }}
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
      enableServiceLinks: false
      securityContext:
        {{- include "video-mesh.podSecurityContext" (dict "uid" 1000 "gid" 1000) | nindent 8 }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ $name }}
          image: {{ include "video-mesh.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: ["node", "dist/services/{{ $name }}/main.js"]
          ports:
            - name: http
              containerPort: {{ $svc.port }}
              protocol: TCP
            # The kubelet's probes, on a listener no client shares (PROBE_PORT).
            - name: probe
              containerPort: {{ include "video-mesh.probePort" $root }}
              protocol: TCP
          env:
            - name: PORT
              value: {{ $svc.port | quote }}
            - name: PROBE_PORT
              value: {{ include "video-mesh.probePort" $root | quote }}
            - name: HOST
              value: "0.0.0.0"
            - name: LOG_LEVEL
              value: {{ $root.Values.logLevel | quote }}
            # Registered in Consul so peers and Consul's health check reach this pod.
            - name: SERVICE_ADDRESS
              valueFrom:
                fieldRef:
                  fieldPath: status.podIP
            - name: SHUTDOWN_DRAIN_DELAY_MS
              value: {{ $root.Values.shutdown.drainDelayMs | quote }}
            - name: SHUTDOWN_TIMEOUT_MS
              value: {{ $root.Values.shutdown.timeoutMs | quote }}
            {{- if $consulAddr }}
            - name: CONSUL_HTTP_ADDR
              value: {{ $consulAddr | quote }}
            {{- end }}
            {{- if and $consulAddr $root.Values.consul.token.existingSecret }}
            - name: CONSUL_HTTP_TOKEN
              valueFrom:
                secretKeyRef:
                  name: {{ include "video-mesh.consulTokenSecret" (dict "root" $root "name" $name) }}
                  key: {{ $root.Values.consul.token.secretKey }}
            {{- end }}
            {{- if $topo.nats }}
            # Its own NATS user's password, only its own: NATS_URL refers to it.
            - name: NATS_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ include "video-mesh.natsAuthSecretName" $root }}
                  key: {{ $name }}
            - name: NATS_URL
              value: {{ include "video-mesh.natsServiceUrl" (dict "root" $root "user" $name) | quote }}
            {{- end }}
            {{- if $natsCa }}
            # The CA NATS_URL's tls:// verifies the server against, besides the image's.
            - name: NODE_EXTRA_CA_CERTS
              value: {{ printf "%s/%s" (include "video-mesh.natsCaDir" $root) (base $natsCa) | quote }}
            {{- end }}
            {{- if $topo.eventStream }}
            # Replicas of the EVENTS stream when a service creates it: no more
            # than the NATS servers that hold it.
            - name: EVENTS_STREAM_REPLICAS
              value: {{ $root.Values.nats.streamReplicas | quote }}
            {{- end }}
            {{- range $peer := $topo.peers }}
            # Static fallback when Consul is unreachable.
            - name: {{ include "video-mesh.peerUrlVar" $peer }}
              value: {{ printf "http://%s:%v" (include "video-mesh.componentName" (dict "root" $root "component" $peer)) (get $root.Values.services $peer).port | quote }}
            {{- end }}
            {{- if and $topo.database (include "video-mesh.postgresServiceRoles" $root) }}
            # The service's own role, owner of its schema only; the kubelet
            # expands its password into the URI.
            - name: DATABASE_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ include "video-mesh.postgresRoleSecretName" (dict "root" $root "service" $name) }}
                  key: {{ include "video-mesh.postgresRolePasswordKey" (dict "root" $root "service" $name) }}
            - name: DATABASE_URL
              value: {{ include "video-mesh.postgresRoleUrl" (dict "root" $root "service" $name) | quote }}
            - name: DATABASE_POOL_MAX
              value: {{ $root.Values.postgres.poolMax | quote }}
            {{- else if $topo.database }}
            # The URI from the existing server's Secret, such as CloudNativePG's
            # <cluster>-app.
            - name: DATABASE_URL
              valueFrom:
                secretKeyRef:
                  name: {{ include "video-mesh.postgresSecretName" $root }}
                  key: {{ include "video-mesh.postgresUriKey" $root }}
            - name: DATABASE_POOL_MAX
              value: {{ $root.Values.postgres.poolMax | quote }}
            {{- end }}
            {{- if $topo.adminToken }}
            - name: ADMIN_TOKEN
              valueFrom:
                secretKeyRef:
                  name: {{ include "video-mesh.adminSecretName" $root }}
                  key: {{ $root.Values.adminToken.secretKey }}
            {{- end }}
            {{- if $topo.recordToken }}
            # reporting requires it on its record routes; queue-listener sends it.
            - name: RECORD_TOKEN
              valueFrom:
                secretKeyRef:
                  name: {{ include "video-mesh.recordSecretName" $root }}
                  key: {{ $root.Values.recordToken.secretKey }}
            {{- end }}
            {{- with include "video-mesh.nodeOptions" (dict "root" $root "svc" $svc) }}
            # The heap follows the container's memory limit (heapLimitPercent).
            - name: NODE_OPTIONS
              value: {{ . | quote }}
            {{- end }}
            {{- with $root.Values.otel.endpoint }}
            - name: OTEL_EXPORTER_OTLP_ENDPOINT
              value: {{ . | quote }}
            - name: OTEL_TRACES_SAMPLER
              value: parentbased_traceidratio
            - name: OTEL_TRACES_SAMPLER_ARG
              value: {{ $root.Values.otel.sampleRatio | toString | quote }}
            {{- end }}
            {{- range $k, $v := $root.Values.extraEnv }}
            - name: {{ $k }}
              value: {{ $v | toString | quote }}
            {{- end }}
            {{- if $root.Values.faults.enabled }}
            # Development machinery, off unless faults.enabled: /admin/faults behind its own token.
            - name: FAULTS_ENABLED
              value: "true"
            - name: FAULTS_TOKEN
              valueFrom:
                secretKeyRef:
                  name: {{ include "video-mesh.faultsSecretName" $root }}
                  key: {{ $root.Values.faults.token.secretKey }}
            {{- end }}
            {{- with $svc.faults }}
            # Fault toggles this service starts with (README "Break it yourself").
            - name: FAULTS
              value: {{ include "video-mesh.faults" (dict "root" $root "name" $name "faults" .) | quote }}
            {{- end }}
            {{- range $k, $v := $svc.env }}
            - name: {{ $k }}
              value: {{ $v | toString | quote }}
            {{- end }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: probe
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /readyz
              port: probe
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 2
          startupProbe:
            httpGet:
              path: /healthz
              port: probe
            periodSeconds: 2
            timeoutSeconds: 2
            failureThreshold: 30
          resources:
            {{- toYaml $svc.resources | nindent 12 }}
          securityContext:
            {{- include "video-mesh.containerSecurityContext" $root | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if $root.Values.mesh.enabled }}
            # consul-k8s logs the pod's proxy in with this token (Kubernetes
            # auth method) and finds it only where the kubelet would mount it.
            - name: consul-login
              mountPath: /var/run/secrets/kubernetes.io/serviceaccount
              readOnly: true
            {{- end }}
            {{- if $postgresCa }}
            - name: postgres-ca
              mountPath: {{ include "video-mesh.postgresCaDir" $root }}
              readOnly: true
            {{- end }}
            {{- if $natsCa }}
            - name: nats-ca
              mountPath: {{ include "video-mesh.natsCaDir" $root }}
              readOnly: true
            {{- end }}
      volumes:
        # The root filesystem is read-only; node and its libraries may still want /tmp.
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        {{- if $root.Values.mesh.enabled }}
        # The ServiceAccount's token, short-lived and rotated, for the mesh
        # login only: the ServiceAccount is bound to no Kubernetes role.
        - name: consul-login
          projected:
            sources:
              - serviceAccountToken:
                  path: token
                  expirationSeconds: 3600
        {{- end }}
        {{- if $postgresCa }}
        # The database's CA, which every connection verifies the server against (sslrootcert).
        - name: postgres-ca
          secret:
            secretName: {{ $postgresCa }}
            items:
              - key: {{ $root.Values.postgres.external.roles.caKey }}
                path: {{ $root.Values.postgres.external.roles.caKey }}
        {{- end }}
        {{- if $natsCa }}
        # The CA of NATS's certificate, only it: the key stays in the server's pod.
        - name: nats-ca
          secret:
            secretName: {{ dir $natsCa }}
            items:
              - key: {{ base $natsCa }}
                path: {{ base $natsCa }}
        {{- end }}
      {{- if and $root.Values.spreadAcrossNodes $scales }}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "video-mesh.selectorLabels" $ctx | nindent 14 }}
      {{- end }}
      {{- with $root.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- if $scales }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $fullName }}
  labels:
    {{- include "video-mesh.labels" $ctx | nindent 4 }}
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      {{- include "video-mesh.selectorLabels" $ctx | nindent 6 }}
{{- end }}
{{- if $svc.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $fullName }}
  labels:
    {{- include "video-mesh.labels" $ctx | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $fullName }}
  minReplicas: {{ $svc.autoscaling.minReplicas }}
  maxReplicas: {{ $svc.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $svc.autoscaling.targetCPUUtilizationPercentage }}
{{- end }}
{{- end }}
