<?php
/**
 * A template fragment: the app's own code mints the subscriber token (a JWT signed with
 * HERALD_JWT_SECRET, `sub` = the user id, short-lived) and passes it in; this file mints nothing.
 *
 * @var string $heraldUrl    e.g. 'https://herald.example.com'
 * @var string $heraldToken  the signed-in user's subscriber token
 * @var string $heraldUser   the user's id (keys the resume point per user in the browser)
 * @var string[] $heraldTopics topics the token allows and this page wants, e.g. ['deploys']
 */
$h = static fn (string $s): string => htmlspecialchars($s, ENT_QUOTES | ENT_HTML5, 'UTF-8');
?>
<script type="module" src="<?= $h($heraldUrl) ?>/herald-inbox.js"></script>
<herald-inbox
  server="<?= $h($heraldUrl) ?>"
  token="<?= $h($heraldToken) ?>"
  user="<?= $h($heraldUser) ?>"
  topics="<?= $h(implode(' ', $heraldTopics)) ?>"></herald-inbox>
