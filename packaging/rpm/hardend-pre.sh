# hardend %pre: the group that may use the local API.
getent group hardend >/dev/null || groupadd -r hardend
exit 0
