{{- /*
_scope: the filter every query applies to a row of any table: the caller's
tenant (a primary-key prefix everywhere) and, when the caller is limited to
some namespaces, those namespaces. Parameters:
  tenant     String         the caller's tenant; required
  namespaces Array(String)  namespaces the caller may see; [] = all of them
*/ -}}
tenant = {tenant:String}
      AND (empty({namespaces:Array(String)}) OR has({namespaces:Array(String)}, namespace))
