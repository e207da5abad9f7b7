{{/*
Consul service mesh mode (mesh.enabled): the names and ports the injected
proxies use, the pod annotations that ask consul-k8s for them, and the
checks that refuse what cannot work. The call graph itself is
video-mesh.topology: ServiceIntentions and NetworkPolicies both read it.
*/}}

{{/*
Port of Envoy's public listener in every injected pod (consul-k8s'
ProxyDefaultInboundPort): a caller's proxy dials the callee's pod there, so
the NetworkPolicies open it instead of the service's own port.
*/}}
{{- define "video-mesh.meshInboundPort" -}}20000{{- end }}

{{/*
Port Prometheus scrapes in mesh mode: Envoy's metrics listener, backed by
consul-dataplane's merged metrics (Envoy's own and the service's /metrics),
outside the mTLS listener: consul-k8s excludes it from the traffic
redirection, so Prometheus, which is not in the mesh, reaches it.
*/}}
{{- define "video-mesh.meshMetricsPort" -}}20200{{- end }}

{{/*
A component's name in Consul: its Kubernetes Service and ServiceAccount name.
With ACLs the injector logs each pod in through the Kubernetes auth method,
which grants the service identity named after the pod's ServiceAccount, so
the service name must be that too. (dict "root" $ "component" "play")
*/}}
{{- define "video-mesh.meshServiceName" -}}
{{- include "video-mesh.componentName" . }}
{{- end }}

{{/*
The annotations of one service's pods in mesh mode.
(dict "root" $ "name" "play" "svc" <service values> "topo" <topology entry>)
*/}}
{{- define "video-mesh.meshPodAnnotations" -}}
{{- $excluded := list (include "video-mesh.probePort" .root) }}
{{- if .topo.public }}
{{- /* The edge: the ingress controller and the helm test pod are not in the
mesh and reach play on its own port; the NetworkPolicy says who may. */}}
{{- $excluded = append $excluded (toString .svc.port) }}
{{- end }}
consul.hashicorp.com/connect-inject: "true"
consul.hashicorp.com/transparent-proxy: "true"
consul.hashicorp.com/connect-service: {{ include "video-mesh.meshServiceName" (dict "root" .root "component" .name) | quote }}
consul.hashicorp.com/connect-service-port: http
# The kubelet's probes stay on the probe listener, outside the proxy: a
# sidecar restart must not fail liveness.
consul.hashicorp.com/transparent-proxy-exclude-inbound-ports: {{ join "," $excluded | quote }}
consul.hashicorp.com/transparent-proxy-overwrite-probes: "false"
# Metrics merging: Envoy's and the service's metrics together on the scrape
# port, which is not redirected into the proxy.
consul.hashicorp.com/enable-metrics: "true"
consul.hashicorp.com/enable-metrics-merging: "true"
consul.hashicorp.com/service-metrics-port: {{ .svc.port | quote }}
consul.hashicorp.com/service-metrics-path: /metrics
consul.hashicorp.com/prometheus-scrape-port: {{ include "video-mesh.meshMetricsPort" .root | quote }}
{{- end }}

{{/* Refuses mesh settings that cannot work. */}}
{{- define "video-mesh.validateMesh" -}}
{{- if and .Values.mesh.enabled .Values.consul.selfContained }}
{{- fail "mesh.enabled needs consul.selfContained=false: the chart's own Consul server has no sidecar injector, no CRDs and no certificate authority. Install the official Consul chart with k8s/addons/consul-values.yaml and k8s/addons/consul-values-mesh.yaml (docs/consul.md, Service mesh)" }}
{{- end }}
{{- end }}

{{/*
CONSUL_HTTP_ADDR of the services: empty in mesh mode, where the injector
registers every pod with its proxy and the services neither register nor
look up (two registrations of one pod would disagree on its address and
health), and callers reach peers at their Service names through the proxy.
*/}}
{{- define "video-mesh.servicesConsulAddr" -}}
{{- if not .Values.mesh.enabled }}
{{- include "video-mesh.consulAddr" . }}
{{- end }}
{{- end }}

{{/*
The Secret of one service's CONSUL_HTTP_TOKEN: consul.token.existingSecret,
or with perService its <existingSecret>-<service>.
(dict "root" $ "name" "play")
*/}}
{{- define "video-mesh.consulTokenSecret" -}}
{{- if .root.Values.consul.token.perService }}
{{- printf "%s-%s" .root.Values.consul.token.existingSecret .name }}
{{- else }}
{{- .root.Values.consul.token.existingSecret }}
{{- end }}
{{- end }}
