# hardend-collector %pre: the collector's system user and group.
getent group hardend-collector >/dev/null || groupadd -r hardend-collector
getent passwd hardend-collector >/dev/null || \
    useradd -r -g hardend-collector -M -d /var/lib/hardend-collector \
        -s /sbin/nologin -c "hardend fleet collector" hardend-collector
exit 0
