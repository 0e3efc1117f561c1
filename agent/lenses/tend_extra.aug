(*
Module: Tend_extra
  Files Tend's checks read that the lenses shipped with augeas do not map.

Author: the Tend authors

About: Reference
  The files are written in shell-variable syntax, so this module reuses
  augeas' own <Shellvars.lns> and only adds a transform naming them.

About: Files
  /etc/ufw/ufw.conf - ufw's settings (ENABLED, LOGLEVEL). /etc/default/ufw
  is not listed: Shellvars already maps every file in /etc/default, and a
  file that two lenses map fails to load.

About: Examples
  > augtool -I agent/lenses print /files/etc/ufw/ufw.conf/ENABLED
  > /files/etc/ufw/ufw.conf/ENABLED = "yes"
*)
module Tend_extra =
  autoload xfm

(* View: lns
   The Shellvars lens: KEY=value lines, comments and blank lines. *)
let lns = Shellvars.lns

(* View: filter
   The files this module maps. *)
let filter = incl "/etc/ufw/ufw.conf"

let xfm = transform lns filter
