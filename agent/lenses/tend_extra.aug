(*
Module: Tend_extra
  Files Tend's checks read that the lenses shipped with augeas do not map.

Author: the Tend authors

About: Reference
  The files are KEY=value lines with comments, so this module reuses
  augeas' own <Simplevars.lns> and only adds a transform naming them.
  Simplevars gives ufw.conf the same tree as Shellvars (one node per
  variable, #comment nodes) and compiles in a tenth of the time, which is
  most of the cost of the Linux firewall check.

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
   The Simplevars lens: KEY=value lines, comments and blank lines. *)
let lns = Simplevars.lns

(* View: filter
   The files this module maps. *)
let filter = incl "/etc/ufw/ufw.conf"

let xfm = transform lns filter
