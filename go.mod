module github.com/chos-hpc/chos

go 1.26.8

require (
	github.com/cyphar/filepath-securejoin v0.7.0
	github.com/moby/sys/mountinfo v0.7.3
	github.com/urfave/cli/v3 v3.14.0
	golang.org/x/sys v0.49.0
)

require cyphar.com/go-pathrs v0.2.5 // indirect
