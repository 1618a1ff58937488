{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "nim-admission.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<chart>, or the release name alone when it already contains the chart name.
Truncated to 50 characters so that the longest suffixed name whose length Kubernetes limits to 63 (the Job
"<fullname>-certs-inject", whose name becomes a label value) still fits.
*/}}
{{- define "nim-admission.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "nim-admission.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "nim-admission.labels" -}}
helm.sh/chart: {{ include "nim-admission.chart" . }}
app.kubernetes.io/name: {{ include "nim-admission.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: nim-admission
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of the webhook server pods. */}}
{{- define "nim-admission.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nim-admission.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end }}

{{/* Selector labels of the applier pods. */}}
{{- define "nim-admission.applierSelectorLabels" -}}
app.kubernetes.io/name: {{ include "nim-admission.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: applier
{{- end }}

{{- define "nim-admission.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "nim-admission.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "nim-admission.applierServiceAccountName" -}}
{{- if .Values.applier.serviceAccount.create }}
{{- default (printf "%s-applier" (include "nim-admission.fullname" .)) .Values.applier.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.applier.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "nim-admission.certsName" -}}
{{- printf "%s-certs" (include "nim-admission.fullname" .) }}
{{- end }}

{{/*
Both webhook configurations share the full name: `certs inject --webhook NAME` updates the Validating and the
Mutating configuration of that name, so one name covers both.
*/}}
{{- define "nim-admission.webhookConfigName" -}}
{{- include "nim-admission.fullname" . }}
{{- end }}

{{/* Name of the Secret with tls.crt, tls.key and ca.crt that the server mounts. */}}
{{- define "nim-admission.tlsSecretName" -}}
{{- if eq .Values.certificates.mode "existingSecret" }}
{{- required "certificates.existingSecret.name is required when certificates.mode is existingSecret" .Values.certificates.existingSecret.name }}
{{- else }}
{{- default (printf "%s-tls" (include "nim-admission.fullname" .)) .Values.certificates.secretName }}
{{- end }}
{{- end }}

{{/* The DNS names the apiserver may use for the Service, one a line. */}}
{{- define "nim-admission.dnsNames" -}}
{{- $svc := include "nim-admission.fullname" . }}
{{- $ns := .Release.Namespace }}
{{ $svc }}
{{ printf "%s.%s" $svc $ns }}
{{ printf "%s.%s.svc" $svc $ns }}
{{ printf "%s.%s.svc.cluster.local" $svc $ns }}
{{- end }}

{{- define "nim-admission.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* cert-manager annotation value "<namespace>/<Certificate>" for the cainjector. */}}
{{- define "nim-admission.injectCAFrom" -}}
{{- printf "%s/%s-serving" .Release.Namespace (include "nim-admission.fullname" .) }}
{{- end }}

{{/* Annotations shared by both webhook configurations. */}}
{{- define "nim-admission.webhookAnnotations" -}}
{{- if eq .Values.certificates.mode "certManager" }}
cert-manager.io/inject-ca-from: {{ include "nim-admission.injectCAFrom" . }}
{{- end }}
{{- with .Values.webhook.annotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Namespaces the webhooks never see: the release namespace, kube-system and webhook.excludeNamespaces. */}}
{{- define "nim-admission.namespaceSelector" -}}
{{- $excluded := list .Release.Namespace "kube-system" }}
{{- range .Values.webhook.excludeNamespaces }}
{{- $excluded = append $excluded . }}
{{- end }}
{{- $extra := .Values.webhook.namespaceSelector }}
{{- with $extra.matchLabels }}
matchLabels:
  {{- toYaml . | nindent 2 }}
{{- end }}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values:
      {{- toYaml (uniq $excluded) | nindent 6 }}
  {{- with $extra.matchExpressions }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* The rules shared by both webhooks: NIMService CREATE and UPDATE only. */}}
{{- define "nim-admission.rules" -}}
- apiGroups: ["apps.nvidia.com"]
  apiVersions: ["v1alpha1"]
  operations: ["CREATE", "UPDATE"]
  resources: ["nimservices"]
  scope: Namespaced
{{- end }}

{{/* clientConfig of a webhook; $path is /validate or /mutate. */}}
{{- define "nim-admission.clientConfig" -}}
{{- $root := index . 0 }}
{{- $path := index . 1 }}
service:
  name: {{ include "nim-admission.fullname" $root }}
  namespace: {{ $root.Release.Namespace }}
  path: {{ $path }}
  port: {{ $root.Values.service.port }}
{{- if and (eq $root.Values.certificates.mode "existingSecret") $root.Values.certificates.existingSecret.caBundle }}
caBundle: {{ $root.Values.certificates.existingSecret.caBundle }}
{{- end }}
{{- end }}

{{/* Fails rendering when the grace period cannot hold the drain delay plus one review. */}}
{{- define "nim-admission.validate" -}}
{{- $needed := add .Values.server.shutdownDelaySeconds .Values.webhook.timeoutSeconds }}
{{- if le (int .Values.terminationGracePeriodSeconds) (int $needed) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be greater than server.shutdownDelaySeconds + webhook.timeoutSeconds (%v)" .Values.terminationGracePeriodSeconds $needed) }}
{{- end }}
{{- if and .Values.applier.enabled (not .Values.webhook.mutating.enabled) }}
{{- fail "applier.enabled needs webhook.mutating.enabled: the applier acts only in namespaces the MutatingWebhookConfiguration's namespaceSelector covers (--webhook-configuration)" }}
{{- end }}
{{- $pdb := .Values.podDisruptionBudget }}
{{- if and $pdb.enabled (not (kindIs "string" $pdb.minAvailable)) (not (kindIs "invalid" $pdb.minAvailable)) (kindIs "invalid" $pdb.maxUnavailable) }}
{{- if ge (int $pdb.minAvailable) (int .Values.replicaCount) }}
{{- fail (printf "podDisruptionBudget.minAvailable (%v) must be less than replicaCount (%v), or no node could ever be drained" $pdb.minAvailable .Values.replicaCount) }}
{{- end }}
{{- end }}
{{- end }}

{{- define "nim-admission.renewName" -}}
{{- /* A CronJob name is limited to 52 characters: its Jobs add an 11-character suffix. */}}
{{- printf "%s-certs-renew" (include "nim-admission.fullname" . | trunc 40 | trimSuffix "-") }}
{{- end }}

{{- define "nim-admission.uninstallName" -}}
{{- printf "%s-uninstall" (include "nim-admission.fullname" .) }}
{{- end }}

{{/*
"true" when a post-install Job must arm failurePolicy: an enabled webhook is configured Fail. In every certificate
mode, even existingSecret with a caBundle: a pod that never becomes ready must not refuse NIMService writes either.
*/}}
{{- define "nim-admission.needsArming" -}}
{{- $v := .Values.webhook }}
{{- if or (and $v.validating.enabled (eq $v.validating.failurePolicy "Fail")) (and $v.mutating.enabled (eq $v.mutating.failurePolicy "Fail")) }}true{{ end }}
{{- end }}

{{/* The `certs inject --failure-policy` value: validating=P,mutating=P for the enabled webhooks. */}}
{{- define "nim-admission.failurePolicyArg" -}}
{{- $parts := list }}
{{- if .Values.webhook.validating.enabled }}{{ $parts = append $parts (printf "validating=%s" .Values.webhook.validating.failurePolicy) }}{{ end }}
{{- if .Values.webhook.mutating.enabled }}{{ $parts = append $parts (printf "mutating=%s" .Values.webhook.mutating.failurePolicy) }}{{ end }}
{{- join "," $parts }}
{{- end }}

{{/*
The failurePolicy a webhook entry is rendered with: (list $ kind webhookName configuredPolicy).
A configured Fail is rendered as Ignore, so that nothing refuses NIMService writes before a serving certificate, its
caBundle and a ready pod exist; a Job arms it (`certs inject --failure-policy`) once they do. On upgrade an entry that is already
armed (Fail with a caBundle, read with `lookup`) keeps Fail: the three-way merge would otherwise reset it to Ignore
until the post-upgrade Job re-arms it. Where lookup reads nothing (`helm template`, GitOps tools) it renders Ignore,
and the post-install/post-upgrade Job and the renewal CronJob arm it.
*/}}
{{- define "nim-admission.renderedFailurePolicy" -}}
{{- $root := index . 0 }}
{{- $kind := index . 1 }}
{{- $hook := index . 2 }}
{{- $configured := index . 3 }}
{{- if eq $configured "Ignore" }}
{{- $configured }}
{{- else }}
{{- $armed := false }}
{{- $live := lookup "admissionregistration.k8s.io/v1" $kind "" (include "nim-admission.webhookConfigName" $root) }}
{{- range (get $live "webhooks" | default list) }}
{{- if and (eq (toString .name) $hook) (eq (toString .failurePolicy) "Fail") .clientConfig .clientConfig.caBundle }}
{{- $armed = true }}
{{- end }}
{{- end }}
{{- ternary "Fail" "Ignore" $armed }}
{{- end }}
{{- end }}

{{/* `certs generate` arguments for the chart's certificate Secrets. */}}
{{- define "nim-admission.generateArgs" -}}
{{- $cfg := .Values.certificates.selfSigned }}
- certs
- generate
- --service
- {{ include "nim-admission.fullname" . }}
- --namespace
- {{ .Release.Namespace }}
- --secret
- {{ include "nim-admission.tlsSecretName" . }}
- --ca-days
- {{ int $cfg.caDays | quote }}
- --days
- {{ int $cfg.days | quote }}
{{- with $cfg.renewBefore }}
- --renew-before
- {{ . | quote }}
{{- end }}
{{- end }}

{{/*
`certs inject` arguments: (list $ arm). selfSigned injects ca.crt from the serving Secret; the other modes only arm
(cert-manager's cainjector, or you, write caBundle). With arm, failurePolicy is set as configured, Fail only once
caBundle holds a CA and the Service has a ready pod, waiting up to jobs.armWaitSeconds for both.
*/}}
{{- define "nim-admission.injectArgs" -}}
{{- $root := index . 0 }}
{{- $arm := index . 1 }}
- certs
- inject
- --webhook
- {{ include "nim-admission.webhookConfigName" $root }}
{{- if eq $root.Values.certificates.mode "selfSigned" }}
- --secret
- {{ include "nim-admission.tlsSecretName" $root }}
- --secret-namespace
- {{ $root.Release.Namespace }}
{{- end }}
{{- if $arm }}
- --failure-policy
- {{ include "nim-admission.failurePolicyArg" $root }}
- --wait
- {{ printf "%ds" (int $root.Values.jobs.armWaitSeconds) }}
{{- end }}
{{- end }}

{{/* A container of the chart's Jobs: (list $ name argsYaml). */}}
{{- define "nim-admission.jobContainer" -}}
{{- $root := index . 0 }}
{{- $cfg := $root.Values.jobs -}}
- name: {{ index . 1 }}
  image: {{ include "nim-admission.image" $root }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  args:
    {{- index . 2 | trim | nindent 4 }}
  env:
    - name: POD_NAMESPACE
      valueFrom:
        fieldRef:
          fieldPath: metadata.namespace
  resources:
    {{- toYaml $cfg.resources | nindent 4 }}
  securityContext:
    {{- toYaml $root.Values.securityContext | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
{{- end }}

{{/*
The pod spec of the chart's Jobs: (dict "root" $ "serviceAccount" NAME "init" CONTAINERS "containers" CONTAINERS),
containers rendered by nim-admission.jobContainer; init may be empty.
*/}}
{{- define "nim-admission.jobPodSpec" -}}
{{- $root := .root -}}
serviceAccountName: {{ .serviceAccount }}
automountServiceAccountToken: true
enableServiceLinks: false
restartPolicy: Never
{{- with $root.Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with $root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .init }}
initContainers:
  {{- . | trim | nindent 2 }}
{{- end }}
containers:
  {{- .containers | trim | nindent 2 }}
volumes:
  - name: tmp
    emptyDir:
      medium: Memory
      sizeLimit: 16Mi
{{- end }}

{{/* Labels of a Job's pods: (list $ component). */}}
{{- define "nim-admission.jobPodLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "nim-admission.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/*
"true" when an optional Prometheus Operator object is rendered: (list $ enabledValue Kind). `auto` renders it when the
cluster serves monitoring.coreos.com/v1 Kind (helm install/upgrade ask the apiserver; `helm template` needs
`--api-versions monitoring.coreos.com/v1/Kind`), so the alerts are on wherever they can be.
*/}}
{{- define "nim-admission.monitoringEnabled" -}}
{{- $root := index . 0 }}
{{- $value := index . 1 }}
{{- if eq (toString $value) "auto" }}
{{- if $root.Capabilities.APIVersions.Has (printf "monitoring.coreos.com/v1/%s" (index . 2)) }}true{{ end }}
{{- else if $value }}true{{ end }}
{{- end }}
