package mirror

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
)

// A read's request for the target's progress ends the follower's watch
// and reopens it from the mirror's resourceVersion (for the bookmark the
// target sends before that watch's short deadline); the bookmark moves
// the mirror on and ends that watch. A request while it is open waits for
// its bookmark, then opens another, so a bookmark under way is not put
// off. A watch for a bookmark that reaches its deadline without one mutes
// the requests: they would only keep ending the long watch.
func TestProgressRequestReopensTheWatch(t *testing.T) {
	r, target := followed(t, 10)
	none := func(what string) {
		t.Helper()
		select {
		case <-target.watchers:
			t.Fatalf("a watch was opened %s", what)
		case <-time.After(200 * time.Millisecond):
		}
	}

	first := target.next(t, "at the start")
	r.progress.request()
	forProgress := target.next(t, "for the request")
	if !first.IsStopped() {
		t.Error("the watch open at the request was not ended")
	}
	r.progress.request()
	none("while the watch for a request was open")
	bookmark := &unstructured.Unstructured{}
	bookmark.SetResourceVersion("25")
	forProgress.Action(watch.Bookmark, bookmark)
	waitRV(t, r, 25)
	again := target.next(t, "for the request made while the first was open")
	if !forProgress.IsStopped() {
		t.Error("the watch for a bookmark went on after its bookmark")
	}
	again.Action(watch.Bookmark, bookmark)
	target.next(t, "to follow on")
	none("without a request")

	// A target that sends no bookmark by the deadline: muted.
	r.progress.request()
	silent := target.next(t, "for a request")
	time.Sleep(progressWatchLived)
	silent.Stop() // its deadline
	target.next(t, "to follow on after the silent watch")
	r.progress.request()
	none("for a request after a watch for a bookmark got none")

	if _, watchRVs := target.opened(); fmt.Sprint(watchRVs) != "[10 10 25 25 25 25]" {
		t.Errorf("watches from %v, want [10 10 25 25 25 25]", watchRVs)
	}
}
