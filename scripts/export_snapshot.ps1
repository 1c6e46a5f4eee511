<#
.SYNOPSIS
    Export the authoritative catalog to a read-model snapshot (Windows operator script).

.DESCRIPTION
    Runs `snapbuild export` for the given catalog database and target directory.
    Stops at the first failure and exits with snapbuild's own exit code
    (1 = operational error, 2 = usage error), so a scheduled task reports it.

.EXAMPLE
    .\scripts\export_snapshot.ps1 -DbPath D:\catalog\catalogsync.db -TargetDir D:\snapshots\current
#>
param(
    [Parameter(Mandatory = $true)]
    [string]$DbPath,

    [Parameter(Mandatory = $true)]
    [string]$TargetDir,

    # The Python interpreter that has snapbuild installed.
    [string]$Python = "python"
)

$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest
$OutputEncoding = [System.Text.Encoding]::UTF8
[Console]::OutputEncoding = [System.Text.Encoding]::UTF8
$env:PYTHONUTF8 = "1"

& $Python -m snapbuild export --db $DbPath --target-dir $TargetDir
$code = $LASTEXITCODE
if ($code -ne 0) {
    Write-Error "snapbuild export failed with exit code $code" -ErrorAction Continue
    exit $code
}
Write-Host "Snapshot exported to $TargetDir"
exit 0
