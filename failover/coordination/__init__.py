"""Distributed mode: replicas on etcd, one fenced leader, decisions on a vantage quorum."""
