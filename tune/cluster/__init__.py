"""Ray clusters: what the nodes offer and what a job carries to them (nodes), and Ray Jobs for
`hpo submit` (jobs)."""
