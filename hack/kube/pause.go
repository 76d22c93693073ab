// pause: the sandbox ("pause") container of hack/kube clusters. Built static (CGO_ENABLED=0) by
// hack/kube/up into an OCI image; it sleeps until SIGTERM/SIGINT and reaps nothing else.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
