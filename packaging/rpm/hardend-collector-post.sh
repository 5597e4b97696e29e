# hardend-collector %post: on first install, enable the collector (as
# %systemd_post with an enabling preset) but do not start it: it needs its
# TLS certificates first.
if [ "$1" -eq 1 ]; then
    systemctl --no-reload enable hardend-collector.service >/dev/null 2>&1 || :
    echo "hardend-collector is enabled but not started: it needs its TLS certificates"
    echo "first; /etc/hardend-collector/collector.yaml says how to make them."
fi
exit 0
