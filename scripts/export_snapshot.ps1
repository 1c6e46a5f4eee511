<#
.SYNOPSIS
    Export the authoritative catalog to a read-model snapshot (Windows operator script).

.DESCRIPTION
    Runs `snapbuild export` for the given catalog database and target directory.
    With -Commit, the snapshot is also committed to a git repository of
    snapshots (-Repo, default .\snapshots.git, created on first use); -Push then
    pushes main and the snapshot tags to a remote so consumers can git pull.
    -Notify then POSTs a signed notice of the new snapshot to each receiver
    URL (-NotifySecretFile holds the shared secret; see docs/consumers.md).
    -SignKey signs each new snapshot commit with an SSH key in git's own format,
    so consumers can verify it (git verify-commit, git pull --verify-signatures;
    see docs/consumers.md, "Verifying snapshots"). Without -SignKey the
    SNAPBUILD_SIGN_KEY environment variable, if set, names the key.
    -PartSize sets the split layout's part size (default 32MiB; see
    docs/consumers.md). -Gc repacks the repository (snapbuild gc) before the
    export: run it that way, never right after an export, so consumers one
    snapshot behind keep receiving a small delta.
    Stops at the first failure and exits with snapbuild's own exit code
    (1 = operational error, 2 = usage error, 3 = committed and pushed but a
    receiver was not notified), so a scheduled task reports it.

.EXAMPLE
    .\scripts\export_snapshot.ps1 -DbPath D:\catalog\catalogsync.db -TargetDir D:\snapshots\current

.EXAMPLE
    .\scripts\export_snapshot.ps1 -DbPath D:\catalog\catalogsync.db -Commit -Repo D:\snapshots\catalog.git -Push ssh://git@git.example.org/catalog.git

.EXAMPLE
    .\scripts\export_snapshot.ps1 -DbPath D:\catalog\catalogsync.db -Push ssh://git@git.example.org/catalog.git -Notify https://player.example.org/snapbuild,https://search.example.org/hooks/catalog -NotifySecretFile D:\snapshots\notify-secret.txt
    .\scripts\export_snapshot.ps1 -DbPath D:\catalog\catalogsync.db -Commit -SignKey D:\keys\snapbuild_ed25519
#>
param(
    [Parameter(Mandatory = $true)]
    [string]$DbPath,

    # Directory that receives catalog_read.db and manifest.json; optional with -Commit.
    [string]$TargetDir,

    # Commit the snapshot to the snapshot repository.
    [switch]$Commit,

    # The snapshot repository (bare); used with -Commit. Default: .\snapshots.git
    [string]$Repo,

    # Remote (path, file://, ssh or https URL) to push main and the tags to; implies -Commit.
    [string]$Push,

    # Receiver URLs to notify of a new snapshot (after the commit and the push); implies -Commit.
    [string[]]$Notify,

    # File holding the secret shared with the receivers; required with -Notify.
    [string]$NotifySecretFile,
    # SSH key that signs each snapshot commit: a private key file without passphrase, or a
    # public key (.pub) whose private key the OpenSSH Authentication Agent holds; implies -Commit.
    [string]$SignKey,

    # Part size of the split layout (e.g. 32MiB, a multiple of 4 KiB); implies -Commit.
    [string]$PartSize,

    # Repack the repository (snapbuild gc) before the export; implies -Commit.
    [switch]$Gc,

    # The Python interpreter that has snapbuild installed.
    [string]$Python = "python"
)

$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest
$OutputEncoding = [System.Text.Encoding]::UTF8
[Console]::OutputEncoding = [System.Text.Encoding]::UTF8
$env:PYTHONUTF8 = "1"

if ($Push -or $Notify -or $SignKey -or $PartSize -or $Gc) { $Commit = $true }
if (-not $TargetDir -and -not $Commit) {
    Write-Error "Give -TargetDir, -Commit, or both." -ErrorAction Continue
    exit 2
}

$arguments = @("-m", "snapbuild", "export", "--db", $DbPath)
if ($TargetDir) { $arguments += @("--target-dir", $TargetDir) }
if ($Commit) { $arguments += "--commit" }
if ($Repo) { $arguments += @("--repo", $Repo) }
if ($Push) { $arguments += @("--push", $Push) }
# Commas separate URLs too: "powershell -File" passes "-Notify a,b" as one string (percent-encode a comma in a URL).
foreach ($url in @($Notify | ForEach-Object { $_ -split "," } | Where-Object { $_ })) { $arguments += @("--notify", $url) }
if ($NotifySecretFile) { $arguments += @("--notify-secret-file", $NotifySecretFile) }
if ($SignKey) { $arguments += @("--sign-key", $SignKey) }
if ($PartSize) { $arguments += @("--part-size", $PartSize) }

if ($Gc) {
    # Before the export: packed afterwards, the newest pieces could become deltas of each other.
    $gcArguments = @("-m", "snapbuild", "gc", "-q")
    if ($Repo) { $gcArguments += @("--repo", $Repo) }
    & $Python @gcArguments
    if ($LASTEXITCODE -ne 0) {
        Write-Error "snapbuild gc failed with exit code $LASTEXITCODE" -ErrorAction Continue
        exit $LASTEXITCODE
    }
}

& $Python @arguments
$code = $LASTEXITCODE
if ($code -eq 3) {
    Write-Warning "Snapshot committed, but a receiver was not notified (exit code 3); the next run notifies it."
    exit $code
}
if ($code -ne 0) {
    Write-Error "snapbuild export failed with exit code $code" -ErrorAction Continue
    exit $code
}
if ($TargetDir) { Write-Host "Snapshot exported to $TargetDir" }
if ($Commit) {
    $where = if ($Repo) { $Repo } else { "snapshots.git" }
    Write-Host "Snapshot committed to $where"
}
exit 0
