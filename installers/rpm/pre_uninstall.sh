# Tend's %preun ($1: 0 on removal, 1 on upgrade): stop and disable the
# service when the package goes away, not when it is upgraded.
if [ "$1" -eq 0 ]; then
    systemctl disable --now tend.service >/dev/null 2>&1 || :
fi
