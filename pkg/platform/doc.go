/*
Package platform checks with vCluster Platform's management cluster that the
client may use each target, as the Resource Proxy documentation requires.

The documentation's platform-rbac.yaml grants the client identity
loft:vcluster:p-<project>:<name> the verb use on the
virtualclusterinstances.management.loft.sh named after the target, in the
namespace p-<target project> of the management cluster; its troubleshooting
checks it with

	kubectl auth can-i use virtualclusterinstances/target --as=loft:vcluster:p-default:client -n p-default

When the configuration has a platform section (config.Platform), crproxy asks
the same question by SubjectAccessReview (authorization.k8s.io/v1: user the
client identity, group system:authenticated as kubectl's --as adds it,
resourceAttributes {group management.loft.sh, resource
virtualclusterinstances, verb use, name <target name>, namespace
p-<target project>}) before it mirrors or writes a target, for every target,
cross-project ones included.

# Contract

A Checker holds a Decision per target, keyed by the target's ID
"<project>/<name>" (mirror.TargetID). Its State is Pending until the first
check, then Allowed or Denied as the management cluster answers (Reason is
the review's reason), or Unknown while a check fails (unreachable, timed out
after Options.Timeout, an error answer); Unknown keeps whether the last
answer allowed (Decision.Allowed, Answered), and Since says when the state
began. Run checks each target every Options.Interval (5 s by default, so a
grant or a revocation takes effect within seconds, without a restart),
retries sooner by exponential backoff with jitter while the management
cluster fails, and checks at once, at most once per MinRecheckInterval, when
Recheck asks. WaitFirst returns once every target has been checked.
Options.OnChange and Subscribe tell of every change of State.

What crproxy does with a Decision (Admit answers it for a request):

  - Allowed: mirror, serve and write as usual.
  - Denied: nothing is mirrored, served or written; what was mirrored is
    forgotten. Requests answer Forbidden: 403, naming the missing permission
    and the kubectl command above.
  - Unknown, the failure model of an unreachable target: reads are served
    from the mirror with Warning(d) when the last answer allowed (403 when it
    denied, 503 when there was none); writes answer Unavailable: 503 with
    Retry-After, nothing is written. The mirror keeps following the target.
  - Pending: requests answer Unavailable; the mirror waits.

Answers and warnings name the management cluster as "the platform's
management cluster", never by its address; Decision.LastError, which may,
is for crproxy's status and log.

The identity of crproxy's platform kubeconfig needs create on
subjectaccessreviews.authorization.k8s.io in the management cluster, and
nothing else: a ClusterRole such as this one, bound to it by a
ClusterRoleBinding.

	apiVersion: rbac.authorization.k8s.io/v1
	kind: ClusterRole
	metadata: {name: crproxy-platform-check}
	rules:
	- apiGroups: ["authorization.k8s.io"]
	  resources: ["subjectaccessreviews"]
	  verbs: ["create"]

Without it every check is Unknown, and Reason says so.

# Use

	checker, err := platform.NewForConfig(cfg, nil, platform.Options{Logger: log})
	if err != nil { ... }
	go checker.Run(ctx)
	_ = checker.WaitFirst(startCtx) // before mirroring anything
	changes := checker.Subscribe(ctx)
	// the mirror: for id := range changes { d := checker.Decision(id);
	//   start the target's resources if d.MayRead(), stop them if not,
	//   and forget their data if d.State == platform.Denied }
	// the server, per request of resource gr at target id:
	d := checker.Decision(id)
	if err := platform.Admit(gr, d, isWrite); err != nil {
		return err // a Status: 403 or 503
	}
	if w := platform.Warning(d); w != "" { ... add the Warning ... }
	// on a 403 from the target:
	checker.Recheck(id)

A nil *Checker (a configuration without a platform section) allows every
target, so callers need no second code path.
*/
package platform
