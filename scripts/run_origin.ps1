<#
.SYNOPSIS
    Run the private origin server (origin-server serve) on a Windows NAS.

.DESCRIPTION
    Starts `python -m origin_server serve` with the given media roots and key
    file, in the foreground, so a service wrapper (NSSM, see docs/origin.md)
    or a scheduled task can supervise it. The origin refuses to start, with one
    line on stderr and exit code 1, on a missing media root or a missing,
    empty, malformed or short key file; this script then exits with the same
    code, so the wrapper reports the failure instead of looping silently.

    waitress has no TLS: keep -BindHost at 127.0.0.1 and put nginx (or another
    TLS proxy) in front, passing its address as -TrustedProxy.

.EXAMPLE
    .\scripts\run_origin.ps1 -MediaRoot 'music=D:\Music','E:\Archive' -SecretFile C:\ProgramData\origin\origin.keys

.EXAMPLE
    .\scripts\run_origin.ps1 -MediaRoot 'music=D:\Music' -SecretFile C:\ProgramData\origin\origin.keys `
        -Port 8080 -TrustedProxy 127.0.0.1 -CorsOrigin 'https://music.example.org' -Offload nginx

.EXAMPLE
    .\scripts\run_origin.ps1 -MediaRoot 'nas-main=D:\Music' -SecretFile C:\ProgramData\origin\origin.keys `
        -Catalog D:\catalog\snapshot
#>
param(
    # One or more media roots, as [NAME=]PATH (NAME is the storage backend a token names).
    [Parameter(Mandatory = $true)]
    [string[]]$MediaRoot,

    # The key file (KID:SECRET per line, first line signs). Defaults to $env:ORIGIN_SECRET_FILE.
    [string]$SecretFile = $env:ORIGIN_SECRET_FILE,

    [string]$BindHost = "127.0.0.1",
    [ValidateRange(1, 65535)]
    [int]$Port = 8080,
    [ValidateRange(1, 256)]
    [int]$Threads = 4,
    # Must stay below 512, Windows' select() ceiling.
    [ValidateRange(1, 511)]
    [int]$ConnectionLimit = 500,
    # Seconds a client has to send a complete request.
    [double]$HeaderTimeout = 5,
    [string[]]$CorsOrigin = @(),
    [string]$TrustedProxy = "",
    # "nginx": answer with X-Accel-Redirect and let nginx send the bytes.
    [ValidateSet("nginx")]
    [string]$Offload,
    [string]$OffloadPrefix = "/_protected",
    # A directory holding a published snapshot (catalog_read.db + manifest.json): serve only the
    # files it lists as active (410 for the rest); every -MediaRoot then needs a NAME.
    [string]$Catalog = "",

    # The Python interpreter that has the project installed.
    [string]$Python = "python"
)

$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest
$OutputEncoding = [System.Text.Encoding]::UTF8
[Console]::OutputEncoding = [System.Text.Encoding]::UTF8
$env:PYTHONUTF8 = "1"
$env:PYTHONUNBUFFERED = "1"

if (-not $SecretFile) {
    Write-Error "No key file: pass -SecretFile or set ORIGIN_SECRET_FILE" -ErrorAction Continue
    exit 2
}

$arguments = @("-m", "origin_server", "serve",
    "--secret-file", $SecretFile,
    "--host", $BindHost,
    "--port", "$Port",
    "--threads", "$Threads",
    "--connection-limit", "$ConnectionLimit",
    "--header-timeout", $HeaderTimeout.ToString([Globalization.CultureInfo]::InvariantCulture))
foreach ($root in $MediaRoot) { $arguments += @("--media-root", $root) }
foreach ($origin in $CorsOrigin) { $arguments += @("--cors-origin", $origin) }
if ($TrustedProxy) { $arguments += @("--trusted-proxy", $TrustedProxy) }
if ($Offload) { $arguments += @("--offload", $Offload, "--offload-prefix", $OffloadPrefix) }
if ($Catalog) { $arguments += @("--catalog", $Catalog) }

& $Python @arguments
$code = $LASTEXITCODE
if ($code -ne 0) {
    Write-Error "origin-server exited with code $code" -ErrorAction Continue
    exit $code
}
exit 0
