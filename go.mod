module github.com/chos-hpc/chos

go 1.26.8

require (
	github.com/cyphar/filepath-securejoin v0.7.0
	github.com/moby/sys/mountinfo v0.7.3
	github.com/urfave/cli/v3 v3.14.0
	golang.org/x/sys v0.49.0
	tags.cncf.io/container-device-interface v1.1.2
	tags.cncf.io/container-device-interface/specs-go v1.1.1
)

require (
	cyphar.com/go-pathrs v0.2.5 // indirect
	github.com/fsnotify/fsnotify v1.7.0 // indirect
	github.com/opencontainers/runtime-spec v1.3.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)
