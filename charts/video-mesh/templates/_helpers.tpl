{{/* Names: every resource name comes from here. */}}

{{- define "video-mesh.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "video-mesh.fullname" -}}
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

{{/*
Name of one component's resources: (dict "root" $ "component" "play"), with
an optional "suffix" ("-headless") and "max" length (63, a DNS label). The
release part is cut, never the component or the suffix: cutting the whole
name would give play and metadata the same name under a long release, and
appending after the cut would overflow the limit.
*/}}
{{- define "video-mesh.componentName" -}}
{{- $tail := printf "-%s%s" .component (.suffix | default "") }}
{{- $max := .max | default 63 | int }}
{{- $base := include "video-mesh.fullname" .root | trunc (sub $max (len $tail) | int) | trimSuffix "-" }}
{{- printf "%s%s" $base $tail }}
{{- end }}

{{/*
Name of a StatefulSet's component (nats, postgres, consul), at most 52
characters: the controller labels each pod with controller-revision-hash
<name>-<10-character hash>, a label value held to 63, so a longer name
creates a StatefulSet whose pods are never created. Its Services and
ConfigMaps share the name, plus suffixes of up to 11 characters.
(dict "root" $ "component" "nats")
*/}}
{{- define "video-mesh.statefulName" -}}
{{- include "video-mesh.componentName" (dict "root" .root "component" .component "max" 52) }}
{{- end }}

{{- define "video-mesh.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels: (dict "root" $ "component" "play"). */}}
{{- define "video-mesh.labels" -}}
helm.sh/chart: {{ include "video-mesh.chart" .root }}
{{ include "video-mesh.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: video-mesh
{{- end }}

{{- define "video-mesh.selectorLabels" -}}
app.kubernetes.io/name: {{ include "video-mesh.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Selects every pod of the release, whatever its component. */}}
{{- define "video-mesh.releaseSelectorLabels" -}}
app.kubernetes.io/name: {{ include "video-mesh.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "video-mesh.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- /* An all-digit tag (a date, a build number) arrives as a number from
--set or a values file; print it as digits, not 2.0260101e+07. */}}
{{- if or (kindIs "float64" $tag) (kindIs "int64" $tag) (kindIs "int" $tag) }}
{{- $tag = printf "%d" (int64 $tag) }}
{{- end }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
FAULTS of one service, as JSON: (dict "root" $ "name" "play" "faults" $svc.faults).
They need faults.enabled; publishFailRate is play's and pause queue-listener's
alone. The service would refuse either at start, so the chart refuses first.
*/}}
{{- define "video-mesh.faults" -}}
{{- if not .root.Values.faults.enabled }}
{{- fail (printf "services.%s.faults needs faults.enabled=true: without it the services have no fault toggles" .name) }}
{{- end }}
{{- $owners := dict "publishFailRate" "play" "pause" "queue-listener" }}
{{- range $kind, $owner := $owners }}
{{- if and (hasKey $.faults $kind) (ne $.name $owner) }}
{{- fail (printf "services.%s.faults.%s: %s is a fault of %s only" $.name $kind $kind $owner) }}
{{- end }}
{{- end }}
{{- toJson .faults }}
{{- end }}

{{/*
The call graph of the services, fixed by the code (docs/configuration.md):
which peers each one calls over HTTP (and so gets a *_URL for), whether it
uses NATS (play and queue-listener for view events, metadata and cdnurl for
the catalog change notices they publish), whether it creates the EVENTS
stream, whether it keeps data in PostgreSQL, whether it reads the admin
token (metadata and cdnurl: it guards catalog writes), whether it holds the record token (reporting checks it,
queue-listener sends it), whether the ingress reaches it. Env vars and
NetworkPolicies both derive from it.
*/}}
{{- define "video-mesh.topology" -}}
play:
  peers: [metadata, cdnurl, reporting]
  nats: true
  eventStream: false
  database: false
  adminToken: false
  recordToken: false
  public: true
metadata:
  peers: []
  nats: true
  eventStream: false
  database: true
  adminToken: true
  recordToken: false
  public: false
reporting:
  peers: []
  nats: false
  eventStream: false
  database: true
  adminToken: false
  recordToken: true
  public: false
cdnurl:
  peers: []
  nats: true
  eventStream: false
  database: true
  adminToken: true
  recordToken: false
  public: false
queue-listener:
  peers: [reporting]
  nats: true
  eventStream: true
  database: false
  adminToken: false
  recordToken: true
  public: false
{{- end }}

{{/* The env var naming a peer's static URL: cdnurl -> CDNURL_URL. */}}
{{- define "video-mesh.peerUrlVar" -}}
{{- printf "%s_URL" (. | upper | replace "-" "_") }}
{{- end }}

{{/*
What each NATS user may publish and subscribe to: the same table as
services/contracts/nats-rights.ts (test/chart/nats-auth.test.ts holds them
equal). Empty subscribe: nothing (rendered as a deny of everything).
*/}}
{{- define "video-mesh.natsRights" -}}
play:
  publish: [events.view]
  subscribe: [catalog.changed.>, _INBOX.play.>]
metadata:
  publish: [catalog.changed.metadata.>]
  subscribe: []
cdnurl:
  publish: [catalog.changed.cdnurl.>]
  subscribe: []
queue-listener:
  publish:
    - $JS.API.INFO
    - $JS.API.STREAM.INFO.EVENTS
    - $JS.API.STREAM.CREATE.EVENTS
    - $JS.API.CONSUMER.CREATE.EVENTS.view-recorder.events.view
    - $JS.API.CONSUMER.INFO.EVENTS.view-recorder
    - $JS.API.CONSUMER.MSG.NEXT.EVENTS.view-recorder
    - $JS.ACK.EVENTS.view-recorder.>
    - events.deadletter.view
  subscribe: [_INBOX.queue-listener.>]
operator:
  publish: [">"]
  subscribe: [">"]
{{- end }}

{{/* The nats-server environment variable holding one user's password: queue-listener -> NATS_PASSWORD_QUEUE_LISTENER. */}}
{{- define "video-mesh.natsPasswordVar" -}}
{{- printf "NATS_PASSWORD_%s" (. | upper | replace "-" "_") }}
{{- end }}

{{/*
The users of nats.conf: each password is a reference the server resolves
from its environment (filled from the auth Secret), so the config, a
ConfigMap, holds no secret.
*/}}
{{- define "video-mesh.natsAuthorization" -}}
authorization {
  users: [
{{- range $user, $rights := include "video-mesh.natsRights" . | fromYaml }}
{{- $permissions := dict }}
{{- range $verb := list "publish" "subscribe" }}
{{- $allow := get $rights $verb | default list }}
{{- $_ := set $permissions $verb (ternary (dict "allow" $allow) (dict "deny" (list ">")) (gt (len $allow) 0)) }}
{{- end }}
    {user: {{ $user | toJson }}, password: ${{ include "video-mesh.natsPasswordVar" $user }}, permissions: {{ $permissions | toJson | replace "\\u003e" ">" }}}
{{- end }}
  ]
}
{{- end }}

{{- define "video-mesh.natsAuthSecretName" -}}
{{- default (include "video-mesh.componentName" (dict "root" . "component" "nats-auth")) .Values.nats.auth.existingSecret }}
{{- end }}

{{- /* Led by a letter: nats-server parses the variable a config names it by
($NATS_PASSWORD_<USER>) as a config value, and one led by digits can read
as a number or a size (77, 12MB, 1e5x): the server then refuses to start or
keeps another password. */}}
{{- define "video-mesh.natsPasswordValue" -}}
{{- include "video-mesh.generatedSecretValue" (dict "root" .root "name" (include "video-mesh.natsAuthSecretName" .root) "key" .user "length" 32 "letterFirst" true) }}
{{- end }}

{{/*
NATS_URL of one service: every server with the service's user and
$(NATS_PASSWORD), which Kubernetes fills from the auth Secret when it starts
the container (the pod spec shows only the reference).
(dict "root" $ "user" <service>)
*/}}
{{- define "video-mesh.natsServiceUrl" -}}
{{- $user := .user }}
{{- $urls := list }}
{{- range $url := splitList "," (include "video-mesh.natsUrl" .root) }}
{{- $urls = append $urls (regexReplaceAll "^(nats|tls)://" (trim $url) (printf "${1}://%s:$(NATS_PASSWORD)@" $user)) }}
{{- end }}
{{- join "," $urls }}
{{- end }}

{{- define "video-mesh.natsUrl" -}}
{{- if .Values.nats.selfContained }}
{{- printf "%s://%s:4222" (ternary "tls" "nats" (eq (include "video-mesh.natsTls" .) "true")) (include "video-mesh.statefulName" (dict "root" . "component" "nats")) }}
{{- else }}
{{- required "nats.url is required when nats.selfContained is false" .Values.nats.url }}
{{- end }}
{{- end }}

{{/* CONSUL_HTTP_ADDR, or empty when the services run without Consul. */}}
{{- define "video-mesh.consulAddr" -}}
{{- if .Values.consul.selfContained }}
{{- printf "http://%s:8500" (include "video-mesh.statefulName" (dict "root" . "component" "consul")) }}
{{- else }}
{{- .Values.consul.address }}
{{- end }}
{{- end }}

{{/* The Secret holding DATABASE_URL: the chart's own (shaped like CloudNativePG's
<cluster>-app), or the existing one named in external mode. With
postgres.existingSecret, the self-contained server's password comes from that
Secret (key password) instead, and the services build the URI from it. */}}
{{- define "video-mesh.postgresSecretName" -}}
{{- if .Values.postgres.selfContained }}
{{- default (printf "%s-app" (include "video-mesh.statefulName" (dict "root" . "component" "postgres"))) .Values.postgres.existingSecret }}
{{- else }}
{{- required "postgres.external.existingSecret is required when postgres.selfContained is false: name a Secret in the release namespace whose key postgres.external.uriKey holds a postgres:// URI, such as CloudNativePG's <cluster>-app" .Values.postgres.external.existingSecret }}
{{- end }}
{{- end }}

{{- define "video-mesh.postgresUriKey" -}}
{{- if .Values.postgres.selfContained }}uri{{ else }}{{ .Values.postgres.external.uriKey }}{{ end }}
{{- end }}

{{/* "true" when each store service logs in as its own role on an existing server (postgres.external.roles). */}}
{{- define "video-mesh.postgresRoles" -}}
{{- if and (not .Values.postgres.selfContained) (.Values.postgres.external.roles | default dict).enabled }}true{{ end }}
{{- end }}

{{/* "true" when each store service logs in as its own role: on the chart's own
server always, on an existing one with postgres.external.roles. */}}
{{- define "video-mesh.postgresServiceRoles" -}}
{{- if or .Values.postgres.selfContained (include "video-mesh.postgresRoles" .) }}true{{ end }}
{{- end }}

{{/* "true" when the chart renders the roles' Secrets (a generated password each). */}}
{{- define "video-mesh.postgresRoleSecretsCreated" -}}
{{- if .Values.postgres.selfContained }}
{{- if not .Values.postgres.existingSecret }}true{{ end }}
{{- else if and (include "video-mesh.postgresRoles" .) .Values.postgres.external.roles.createSecrets }}true
{{- end }}
{{- end }}

{{/* The Secret of one service's role: (dict "root" $ "service" "metadata").
Self-contained: <server>-<service> (video-mesh-postgres-metadata), or
postgres.existingSecret, which holds every role's password under its
service's key; external: <secretPrefix><service>. */}}
{{- define "video-mesh.postgresRoleSecretName" -}}
{{- if .root.Values.postgres.selfContained }}
{{- default (printf "%s-%s" (include "video-mesh.statefulName" (dict "root" .root "component" "postgres")) .service) .root.Values.postgres.existingSecret }}
{{- else }}
{{- printf "%s%s" .root.Values.postgres.external.roles.secretPrefix .service }}
{{- end }}
{{- end }}

{{/* The key of that Secret holding the role's password. */}}
{{- define "video-mesh.postgresRolePasswordKey" -}}
{{- if and .root.Values.postgres.selfContained .root.Values.postgres.existingSecret }}{{ .service }}{{ else }}password{{ end }}
{{- end }}

{{/* The env var the self-contained server reads a role's password from: METADATA_PASSWORD. */}}
{{- define "video-mesh.postgresRolePasswordVar" -}}
{{- printf "%s_PASSWORD" (.service | upper | replace "-" "_") }}
{{- end }}

{{/* DATABASE_URL of one service's role, its password expanded by the kubelet from DATABASE_PASSWORD. */}}
{{- define "video-mesh.postgresRoleUrl" -}}
{{- if .root.Values.postgres.selfContained }}
{{- printf "postgres://%s:$(DATABASE_PASSWORD)@%s:5432/%s" .service (include "video-mesh.statefulName" (dict "root" .root "component" "postgres")) .root.Values.postgres.database }}
{{- else }}
{{- $roles := .root.Values.postgres.external.roles }}
{{- printf "postgres://%s:$(DATABASE_PASSWORD)@%s:%v/%s%s" .service $roles.host $roles.port $roles.database (ternary (printf "?sslmode=verify-full&sslrootcert=%s/%s" (include "video-mesh.postgresCaDir" .root) $roles.caKey) "" (ne $roles.caSecret "")) }}
{{- end }}
{{- end }}

{{- define "video-mesh.postgresRolePasswordValue" -}}
{{- include "video-mesh.generatedSecretValue" (dict "root" .root "name" (include "video-mesh.postgresRoleSecretName" .) "key" "password" "length" 32) }}
{{- end }}

{{/* Where a pod finds the database's CA, with postgres.external.roles.caSecret. */}}
{{- define "video-mesh.postgresCaDir" -}}/etc/video-mesh/postgres-ca{{- end }}

{{/* One line saying where the data lives, for NOTES and the helm test's log. */}}
{{- define "video-mesh.dataLocation" -}}
{{- if include "video-mesh.postgresRoles" . }}
{{- $roles := .Values.postgres.external.roles }}
{{- printf "Data of metadata, cdnurl and reporting: the existing PostgreSQL at %s, database %s, each service as its own role owning its schema (Secrets %s<service>)%s." $roles.host $roles.database $roles.secretPrefix (ternary (printf ", over TLS verified against the CA of Secret %s" $roles.caSecret) ", without TLS" (ne $roles.caSecret "")) }}
{{- else if .Values.postgres.selfContained }}
{{- printf "Data of metadata, cdnurl and reporting: the chart's own PostgreSQL (StatefulSet %s, database %s, one schema per service)." (include "video-mesh.statefulName" (dict "root" . "component" "postgres")) .Values.postgres.database }}
{{- else }}
{{- printf "Data of metadata, cdnurl and reporting: the existing PostgreSQL named by the Secret %s, key %s (one schema per service)." (include "video-mesh.postgresSecretName" .) .Values.postgres.external.uriKey }}
{{- end }}
{{- end }}

{{- define "video-mesh.faultsSecretName" -}}
{{- default (include "video-mesh.componentName" (dict "root" . "component" "faults-token")) .Values.faults.token.existingSecret }}
{{- end }}

{{- define "video-mesh.adminSecretName" -}}
{{- default (include "video-mesh.componentName" (dict "root" . "component" "admin-token")) .Values.adminToken.existingSecret }}
{{- end }}

{{/* Pod-level hardening shared by every pod the chart runs: (dict "uid" 1000 "gid" 1000). */}}
{{- define "video-mesh.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .gid }}
fsGroup: {{ .gid }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "video-mesh.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Port of the OTLP endpoint, for the egress NetworkPolicy. */}}
{{- define "video-mesh.otlpPort" -}}
{{- $u := urlParse .Values.otel.endpoint }}
{{- $hostPort := splitList ":" $u.host }}
{{- if gt (len $hostPort) 1 }}
{{- last $hostPort }}
{{- else if eq $u.scheme "https" }}443
{{- else }}80
{{- end }}
{{- end }}

{{/*
The port of every service's probe listener (PROBE_PORT): /healthz and
/readyz only, on an accept queue of their own, so a flood of client
connections on the service's port cannot make the kubelet's probes time out
and take a shedding play out of its Service, or restart it. Inside the pod
only: no Service exposes it. A constant: no operator needs another.
*/}}
{{- define "video-mesh.probePort" -}}8099{{- end }}

{{/* Fails early on settings that cannot work together. */}}
{{- define "video-mesh.validate" -}}
{{- if ge (int .Values.shutdown.timeoutMs) (mul (int .Values.terminationGracePeriodSeconds) 1000 | int) }}
{{- fail (printf "shutdown.timeoutMs (%d) must be shorter than terminationGracePeriodSeconds (%d s)" (int .Values.shutdown.timeoutMs) (int .Values.terminationGracePeriodSeconds)) }}
{{- end }}
{{- if ge (int .Values.shutdown.drainDelayMs) (int .Values.shutdown.timeoutMs) }}
{{- fail "shutdown.drainDelayMs must be shorter than shutdown.timeoutMs" }}
{{- end }}
{{- include "video-mesh.validatePostgresConnections" . }}
{{- if include "video-mesh.postgresRoles" . }}
{{- range $key := list "host" "database" "secretPrefix" }}
{{- if not (get $.Values.postgres.external.roles $key) }}
{{- fail (printf "postgres.external.roles.%s is required when postgres.external.roles.enabled is true" $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $name, $svc := .Values.services }}
{{- if eq (int $svc.port) (int (include "video-mesh.probePort" $)) }}
{{- fail (printf "services.%s.port is %d, the port of the services' probe listener: choose another" $name (int $svc.port)) }}
{{- end }}
{{- end }}
{{- if and .Values.nats.selfContained (gt (int .Values.nats.streamReplicas) 1) }}
{{- fail (printf "nats.streamReplicas is %d, but the self-contained NATS is a single server, which holds one replica of a stream: set nats.streamReplicas=1, or run a NATS cluster (k8s/addons/nats-values.yaml) with nats.selfContained=false" (int .Values.nats.streamReplicas)) }}
{{- end }}
{{- end }}

{{/*
Every pool of the store services, full, must fit in the server's
max_connections: count each Deployment at its most (maxReplicas under an HPA)
plus the one extra pod of a rolling update (maxSurge 1), and keep 10
connections back for superuser_reserved_connections (3), an operator or
exporter, and a person with psql.
*/}}
{{- define "video-mesh.validatePostgresConnections" -}}
{{- $topology := fromYaml (include "video-mesh.topology" .) }}
{{- $pods := 0 }}
{{- range $name, $svc := .Values.services }}
{{- if (get $topology $name).database }}
{{- $most := ternary $svc.autoscaling.maxReplicas $svc.replicas $svc.autoscaling.enabled }}
{{- $pods = add $pods (add1 (int $most)) }}
{{- end }}
{{- end }}
{{- $connections := mul $pods (int .Values.postgres.poolMax) }}
{{- $budget := sub (int .Values.postgres.maxConnections) 10 }}
{{- if gt (int $connections) (int $budget) }}
{{- fail (printf "metadata, cdnurl and reporting may open %d PostgreSQL connections (%d pods at most, rolling updates included, x postgres.poolMax %d), more than postgres.maxConnections %d less 10 kept in reserve: lower postgres.poolMax or maxReplicas, or raise max_connections on the server and postgres.maxConnections" (int $connections) (int $pods) (int .Values.postgres.poolMax) (int .Values.postgres.maxConnections)) }}
{{- end }}
{{- end }}

{{/* A NetworkPolicy peer selecting one component's pods: (dict "root" $ "component" "play"). */}}
{{- define "video-mesh.podPeer" -}}
podSelector:
  matchLabels:
    {{- include "video-mesh.selectorLabels" . | nindent 4 }}
{{- end }}

{{- define "video-mesh.recordSecretName" -}}
{{- default (include "video-mesh.componentName" (dict "root" . "component" "record-token")) .Values.recordToken.existingSecret }}
{{- end }}

{{/*
The value of one key of a Secret this chart generates, in plain text: the
value already in the cluster (lookup, so it survives upgrades; lookup is empty
under helm template), else a random one. The random value is drawn once per
render and remembered on the root context, which every template of the chart
shares, so the Secret and the checksum annotation of the pods reading it
agree: a pod rolls when the value really changes, not on the first upgrade.
(dict "root" $ "name" <Secret> "key" <key> "length" <random length> ["letterFirst" true])
*/}}
{{- define "video-mesh.generatedSecretValue" -}}
{{- if not (hasKey .root "videoMeshGeneratedSecrets") }}
{{- $_ := set .root "videoMeshGeneratedSecrets" dict }}
{{- end }}
{{- $memo := get .root "videoMeshGeneratedSecrets" }}
{{- $id := printf "%s/%s" .name .key }}
{{- if not (hasKey $memo $id) }}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .name }}
{{- if and $existing $existing.data (hasKey $existing.data .key) }}
{{- $_ := set $memo $id (index $existing.data .key | b64dec) }}
{{- else }}
{{- $_ := set $memo $id (ternary (printf "%s%s" (randAlpha 1) (randAlphaNum (int (sub (int .length) 1)))) (randAlphaNum (int .length)) (default false .letterFirst)) }}
{{- end }}
{{- end }}
{{- get $memo $id }}
{{- end }}

{{- define "video-mesh.adminTokenValue" -}}
{{- include "video-mesh.generatedSecretValue" (dict "root" . "name" (include "video-mesh.adminSecretName" .) "key" .Values.adminToken.secretKey "length" 48) }}
{{- end }}

{{- define "video-mesh.faultsTokenValue" -}}
{{- include "video-mesh.generatedSecretValue" (dict "root" . "name" (include "video-mesh.faultsSecretName" .) "key" .Values.faults.token.secretKey "length" 48) }}
{{- end }}

{{- define "video-mesh.recordTokenValue" -}}
{{- include "video-mesh.generatedSecretValue" (dict "root" . "name" (include "video-mesh.recordSecretName" .) "key" .Values.recordToken.secretKey "length" 48) }}
{{- end }}

{{- define "video-mesh.postgresPasswordValue" -}}
{{- include "video-mesh.generatedSecretValue" (dict "root" . "name" (include "video-mesh.postgresSecretName" .) "key" "password" "length" 32) }}
{{- end }}

{{/*
checksum/secrets of one service's pods: a hash of every generated Secret
value it reads (admin token, faults token, record token, its database role's
password), so that a new value rolls exactly the pods that read it; empty
for a service that reads none. Secrets
named by existingSecret are not the chart's to read: rotate those with a
rollout restart (docs/kubernetes.md).
(dict "root" $ "topo" <topology entry> "name" <service>)
*/}}
{{- define "video-mesh.secretsChecksum" -}}
{{- $root := .root }}
{{- $parts := list }}
{{- if and .topo.adminToken (not $root.Values.adminToken.existingSecret) }}
{{- $parts = append $parts (printf "admin-token=%s" (include "video-mesh.adminTokenValue" $root)) }}
{{- end }}
{{- if and $root.Values.faults.enabled (not $root.Values.faults.token.existingSecret) }}
{{- $parts = append $parts (printf "faults-token=%s" (include "video-mesh.faultsTokenValue" $root)) }}
{{- end }}
{{- if and .topo.recordToken (not $root.Values.recordToken.existingSecret) }}
{{- $parts = append $parts (printf "record-token=%s" (include "video-mesh.recordTokenValue" $root)) }}
{{- end }}
{{- if and .topo.database (include "video-mesh.postgresRoleSecretsCreated" $root) }}
{{- $parts = append $parts (printf "postgres-role-password=%s" (include "video-mesh.postgresRolePasswordValue" (dict "root" $root "service" .name))) }}
{{- end }}
{{- if and .topo.nats (not $root.Values.nats.auth.existingSecret) }}
{{- $parts = append $parts (printf "nats-password=%s" (include "video-mesh.natsPasswordValue" (dict "root" $root "user" .name))) }}
{{- end }}
{{- with and .topo.nats (include "video-mesh.natsGeneratedCaChecksum" $root) }}
{{- $parts = append $parts (printf "nats-ca=%s" .) }}
{{- end }}
{{- if $parts }}
{{- join "\n" $parts | sha256sum }}
{{- end }}
{{- end }}

{{/*
A Kubernetes quantity (256Mi, 1Gi, 500M, 1e9, 1048576) in bytes, as an
integer. Only the suffixes the values schema allows for sizes.
*/}}
{{- define "video-mesh.quantityBytes" -}}
{{- $q := toString . }}
{{- $number := regexFind "^[0-9.]+([eE][0-9]+)?" $q }}
{{- $suffix := trimPrefix $number $q }}
{{- $units := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 }}
{{- if not (hasKey $units $suffix) }}
{{- fail (printf "cannot read the quantity %q as bytes (use Ki, Mi, Gi, Ti, k, M, G or T)" $q) }}
{{- end }}
{{- mulf ($number | float64) (get $units $suffix) | floor | int64 }}
{{- end }}

{{/* A percentage of a memory quantity, in whole MiB: (dict "quantity" "256Mi" "percent" 75). */}}
{{- define "video-mesh.percentOfMemoryMiB" -}}
{{- $bytes := include "video-mesh.quantityBytes" .quantity | float64 }}
{{- divf (mulf $bytes (float64 .percent)) (mulf 100 1048576) | floor | int64 }}
{{- end }}

{{/*
NODE_OPTIONS of one service: V8's old-space limit at heapLimitPercent of the
container's memory limit, so the heap stops growing (and the GC works harder)
before the kernel kills the container, and young-generation semi-spaces of
8 MiB: left to V8, they grow to 32 MiB each under load and held a service
near 230 MiB at the benchmark's 4x overload, 120-145 MiB with 8 MiB, at no
measurable cost in CPU per play (npm run bench). Empty without a memory limit
or when the service's env or extraEnv sets NODE_OPTIONS itself.
(dict "root" $ "svc" <service values>)
*/}}
{{- define "video-mesh.nodeOptions" -}}
{{- $limit := dig "limits" "memory" "" (.svc.resources | default dict) }}
{{- $own := or (hasKey (.svc.env | default dict) "NODE_OPTIONS") (hasKey (.root.Values.extraEnv | default dict) "NODE_OPTIONS") }}
{{- if and $limit (not $own) }}
{{- printf "--max-old-space-size=%s --max-semi-space-size=8" (include "video-mesh.percentOfMemoryMiB" (dict "quantity" $limit "percent" .root.Values.heapLimitPercent)) }}
{{- end }}
{{- end }}

{{/*
consul.dev changes what the Consul StatefulSet's volumeClaimTemplates hold,
a field Kubernetes never lets an update change: say so, and what to do,
instead of letting the upgrade fail on an immutable field.
(dict "root" $ "existing" <the StatefulSet in the cluster, or empty>)
*/}}
{{- define "video-mesh.validateConsulMode" -}}
{{- $root := .root }}
{{- with .existing }}
{{- $wasDev := empty (dig "spec" "volumeClaimTemplates" list .) }}
{{- if ne $wasDev $root.Values.consul.dev }}
{{- $name := .metadata.name }}
{{- $was := ternary "true (in memory, no volume)" (printf "false (a server on the PVC data-%s-0)" $name) $wasDev }}
{{- fail (printf "consul.dev cannot change on an installed release: the StatefulSet %s was created with consul.dev=%s, and Kubernetes does not let an upgrade change its volumes. Keep consul.dev=%t, or delete the StatefulSet first (kubectl -n %s delete statefulset %s; the services register again within two Consul check intervals) and upgrade again." $name $was $wasDev $root.Release.Namespace $name) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The volume of a StatefulSet (volumeClaimTemplates) is fixed when it is
created: Kubernetes refuses any upgrade that changes it with an
immutable-field error naming none of our values. On a live release (lookup
finds the StatefulSet; never under helm template) say which value changed
and what to do instead.
(dict "root" $ "values" "nats.storage" "storage" .Values.nats.storage "existing" <the StatefulSet in the cluster, or empty>)
*/}}
{{- define "video-mesh.validateStorage" -}}
{{- $root := .root }}
{{- $storage := .storage }}
{{- $values := .values }}
{{- with .existing }}
{{- $name := .metadata.name }}
{{- range (dig "spec" "volumeClaimTemplates" list .) }}
{{- if eq (dig "metadata" "name" "" .) "data" }}
{{- $size := dig "spec" "resources" "requests" "storage" "" . }}
{{- $class := dig "spec" "storageClassName" "" . }}
{{- if ne (include "video-mesh.quantityBytes" $size) (include "video-mesh.quantityBytes" $storage.size) }}
{{- fail (printf "%s.size cannot be changed after install: the StatefulSet %s was created with %s, and Kubernetes does not let an upgrade change its volumeClaimTemplates. Keep %s.size=%s. To grow the volume, expand the PVC data-%s-0 itself (kubectl -n %s patch pvc data-%s-0 -p '{\"spec\":{\"resources\":{\"requests\":{\"storage\":\"%s\"}}}}', if its StorageClass allows expansion), then delete the StatefulSet but not its pod (kubectl -n %s delete statefulset %s --cascade=orphan) and upgrade again with the new size." $values $name $size $values $size $name $root.Release.Namespace $name (toString $storage.size) $root.Release.Namespace $name) }}
{{- end }}
{{- if ne $class ($storage.storageClassName | default "") }}
{{- fail (printf "%s.storageClassName cannot be changed after install: the StatefulSet %s was created with %q, and Kubernetes does not let an upgrade change its volumeClaimTemplates. Keep %s.storageClassName=%q; moving the data to another StorageClass is a migration (a new release, or a backup restored onto a new PVC), not an upgrade." $values $name $class $values $class) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
replicas of one service's Deployment. Without autoscaling: the value. With
it, the HPA decides; on a live release (lookup finds the Deployment) the
chart renders the count running now, so turning autoscaling on never drops
the field (which an upgrade turns into the default, 1) and a later upgrade
never removes it from under the HPA either. Empty on a first install and
under helm template, where lookup finds nothing (docs/kubernetes.md, Upgrades).
(dict "svc" <service values> "live" <the Deployment in the cluster, or empty>)
*/}}
{{- define "video-mesh.replicas" -}}
{{- if not .svc.autoscaling.enabled }}
{{- .svc.replicas }}
{{- else }}
{{- with .live }}
{{- dig "spec" "replicas" "" . }}
{{- end }}
{{- end }}
{{- end }}
