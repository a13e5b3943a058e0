module chos-bench/gofloor

go 1.26
