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
{{- $pdb := .Values.podDisruptionBudget }}
{{- if and $pdb.enabled (not (kindIs "string" $pdb.minAvailable)) (not (kindIs "invalid" $pdb.minAvailable)) (kindIs "invalid" $pdb.maxUnavailable) }}
{{- if ge (int $pdb.minAvailable) (int .Values.replicaCount) }}
{{- fail (printf "podDisruptionBudget.minAvailable (%v) must be less than replicaCount (%v), or no node could ever be drained" $pdb.minAvailable .Values.replicaCount) }}
{{- end }}
{{- end }}
{{- end }}

{{/* A container of the certificate hook Jobs: (list $ "generate") or (list $ "inject"). */}}
{{- define "nim-admission.certsContainer" -}}
{{- $root := index . 0 }}
{{- $cmd := index . 1 }}
{{- $secret := include "nim-admission.tlsSecretName" $root }}
{{- $cfg := $root.Values.certificates.selfSigned -}}
image: {{ include "nim-admission.image" $root }}
imagePullPolicy: {{ $root.Values.image.pullPolicy }}
args:
  - certs
  - {{ $cmd }}
{{- if eq $cmd "generate" }}
  - --service
  - {{ include "nim-admission.fullname" $root }}
  - --namespace
  - {{ $root.Release.Namespace }}
  - --secret
  - {{ $secret }}
  - --ca-days
  - {{ int $cfg.caDays | quote }}
  - --days
  - {{ int $cfg.days | quote }}
{{- with $cfg.renewBefore }}
  - --renew-before
  - {{ . | quote }}
{{- end }}
{{- else }}
  - --webhook
  - {{ include "nim-admission.webhookConfigName" $root }}
  - --secret
  - {{ $secret }}
  - --secret-namespace
  - {{ $root.Release.Namespace }}
{{- end }}
env:
  - name: POD_NAMESPACE
    valueFrom:
      fieldRef:
        fieldPath: metadata.namespace
resources:
  {{- toYaml $cfg.resources | nindent 2 }}
securityContext:
  {{- toYaml $root.Values.securityContext | nindent 2 }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- end }}
