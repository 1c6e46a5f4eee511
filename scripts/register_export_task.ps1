<#
.SYNOPSIS
    Register export_snapshot.ps1 as a Windows scheduled task (run as the operator, elevated).

.DESCRIPTION
    Creates (or replaces) a scheduled task that runs scripts\export_snapshot.ps1
    every -EveryMinutes minutes, committing each changed snapshot to -Repo and,
    with -Push, pushing it to a remote; with -Notify, telling each receiver URL
    about it. The task runs whether or not the user is logged on, never runs
    two instances at once (a late run is skipped, and snapbuild's own
    repository lock guards against any other writer), and its last exit code
    (0 ok, 1 operational error, 2 usage error, 3 a receiver was not notified)
    shows in Task Scheduler's "Last Run Result".

    Give -Gc to repack the repository (snapbuild gc) at the start of each run,
    before the export (never right after one: see docs/consumers.md); on a
    large repository, a second task with -Gc that runs weekly is enough.

.EXAMPLE
    .\scripts\register_export_task.ps1 -DbPath D:\catalog\catalogsync.db -Repo D:\snapshots\catalog.git -Push ssh://git@git.example.org/catalog.git -EveryMinutes 30

.EXAMPLE
    Unregister-ScheduledTask -TaskName "snapbuild export" -Confirm:$false
#>
param(
    [Parameter(Mandatory = $true)]
    [string]$DbPath,

    [Parameter(Mandatory = $true)]
    [string]$Repo,

    # Directory that also receives catalog_read.db and manifest.json (optional).
    [string]$TargetDir,

    # Remote to push main and the tags to (optional).
    [string]$Push,

    # Receiver URLs to notify of each new snapshot (optional; needs -NotifySecretFile).
    [string[]]$Notify,

    # File holding the secret shared with the receivers.
    [string]$NotifySecretFile,
    # SSH key that signs each snapshot commit (optional; see export_snapshot.ps1). The task's
    # account must be able to read it, or its agent must hold it.
    [string]$SignKey,

    # Part size of the split layout (optional; default 32MiB).
    [string]$PartSize,

    # Repack the repository before each export (optional).
    [switch]$Gc,

    [ValidateRange(1, 1440)]
    [int]$EveryMinutes = 60,

    [string]$TaskName = "snapbuild export",

    # The Python interpreter that has snapbuild installed (a full path is safest for a task).
    [string]$Python = "python",

    # Account the task runs as; the default is the current user.
    [string]$User = "$env:USERDOMAIN\$env:USERNAME"
)

$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest

$script = Join-Path $PSScriptRoot "export_snapshot.ps1"
if (-not (Test-Path -LiteralPath $script)) {
    Write-Error "export_snapshot.ps1 not found beside this script: $script" -ErrorAction Continue
    exit 2
}

function Quote([string]$value) { '"' + $value.Replace('"', '\"') + '"' }

# The task starts elsewhere: pass absolute paths.
$DbPath = [System.IO.Path]::GetFullPath($DbPath)
$Repo = [System.IO.Path]::GetFullPath($Repo)
if ($TargetDir) { $TargetDir = [System.IO.Path]::GetFullPath($TargetDir) }
if ($NotifySecretFile) { $NotifySecretFile = [System.IO.Path]::GetFullPath($NotifySecretFile) }
if ($SignKey) { $SignKey = [System.IO.Path]::GetFullPath($SignKey) }

$arguments = "-NoProfile -NonInteractive -ExecutionPolicy Bypass -File $(Quote $script) " +
    "-DbPath $(Quote $DbPath) -Commit -Repo $(Quote $Repo) -Python $(Quote $Python)"
if ($TargetDir) { $arguments += " -TargetDir $(Quote $TargetDir)" }
if ($Push) { $arguments += " -Push $(Quote $Push)" }
if ($Notify) { $arguments += " -Notify $(Quote ($Notify -join ','))" }
if ($NotifySecretFile) { $arguments += " -NotifySecretFile $(Quote $NotifySecretFile)" }
if ($SignKey) { $arguments += " -SignKey $(Quote $SignKey)" }
if ($PartSize) { $arguments += " -PartSize $(Quote $PartSize)" }
if ($Gc) { $arguments += " -Gc" }

$action = New-ScheduledTaskAction -Execute "powershell.exe" -Argument $arguments -WorkingDirectory (Split-Path -Parent $Repo)
$trigger = New-ScheduledTaskTrigger -Once -At (Get-Date).AddMinutes(1) `
    -RepetitionInterval (New-TimeSpan -Minutes $EveryMinutes)
$settings = New-ScheduledTaskSettingsSet -MultipleInstances IgnoreNew -StartWhenAvailable `
    -ExecutionTimeLimit (New-TimeSpan -Hours 2)
$credential = Get-Credential -UserName $User -Message "Password for the account that runs '$TaskName'"

Register-ScheduledTask -TaskName $TaskName -Action $action -Trigger $trigger -Settings $settings `
    -User $credential.UserName -Password $credential.GetNetworkCredential().Password -RunLevel Limited -Force | Out-Null
Write-Host "Registered scheduled task '$TaskName': every $EveryMinutes min, commits to $Repo"
exit 0
