// Package e2e holds crproxy's end-to-end tests. They run against real etcd
// and kube-apiserver processes (built by `make tools`, started by
// internal/localcluster) and use real clients: the kubectl of bin/ and
// client-go. Run one with:
//
//	go test ./test/e2e -run TestSmoke -v
package e2e
