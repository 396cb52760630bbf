{{/* The chart's name, at most 63 characters (a label value). */}}
{{- define "crproxy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The objects' name; also the Service's name, so it is part of the serving
certificate's DNS names and of the APIServices' spec.service.
*/}}
{{- define "crproxy.fullname" -}}
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

{{- define "crproxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "crproxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "crproxy.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "crproxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "crproxy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "crproxy.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Lease `crproxy serve --leader-elect` takes: <service-name>-registration. */}}
{{- define "crproxy.leaseName" -}}
{{- printf "%s-registration" (include "crproxy.fullname" .) }}
{{- end }}

{{- define "crproxy.tlsSecretName" -}}
{{- if .Values.tls.generate }}
{{- printf "%s-tls" (include "crproxy.fullname" .) }}
{{- else }}
{{- required "tls.existingSecret is required when tls.generate is false (a Secret with tls.crt, tls.key and ca.crt)" .Values.tls.existingSecret }}
{{- end }}
{{- end }}

{{/* A target's effective project: its own, else the client's. */}}
{{- define "crproxy.targetProject" -}}
{{- default .root.Values.client.project .target.project }}
{{- end }}

{{/* The Secret key (and file name) of a target's kubeconfig: <project>.<name>.kubeconfig. */}}
{{- define "crproxy.targetKey" -}}
{{- printf "%s.%s.kubeconfig" (include "crproxy.targetProject" .) .target.name }}
{{- end }}

{{/*
The group/versions of the enabled customResources keys, as JSON
{"<version>.<group>": {"group": ..., "version": ...}}: one APIService each.
A key is resource.group/version or *.group/version; the group is what follows
the resource's first dot, as pkg/config parses it.
*/}}
{{- define "crproxy.groupVersions" -}}
{{- $gvs := dict }}
{{- range $key, $cr := .Values.customResources }}
{{- if and $cr $cr.enabled }}
{{- $parts := splitList "/" $key }}
{{- if or (ne (len $parts) 2) (not (contains "." (first $parts))) }}
{{- fail (printf "customResources: key %q is not resource.group/version or *.group/version" $key) }}
{{- end }}
{{- $version := last $parts }}
{{- $group := regexReplaceAll "^[^.]*\\." (first $parts) "" }}
{{- $_ := set $gvs (printf "%s.%s" $version $group) (dict "group" $group "version" $version) }}
{{- end }}
{{- end }}
{{- if not $gvs }}
{{- fail "customResources: no enabled key; crproxy needs at least one resource to proxy" }}
{{- end }}
{{- toJson $gvs }}
{{- end }}
